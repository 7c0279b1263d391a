"""Task heads: dropout, an optional hidden layer, then a linear layer to the task's labels."""

from torch import nn


class TaskHead(nn.Module):
    def __init__(self, in_dim: int, num_labels: int, dropout: float = 0.3, hidden: int = 0):
        super().__init__()
        layers = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout)]
            in_dim = hidden
        layers.append(nn.Linear(in_dim, num_labels))
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # (B, D) -> (B, num_labels)
        return self.net(x)
