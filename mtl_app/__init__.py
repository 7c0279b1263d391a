"""The Gradio app over the mtl library (`python app.py`). The library never imports this package.

context.py holds what every tab shares (the models, the sessions, the limits); each tab is one module
that lays out its components and wires its handlers (embeddings, predict, train, experiments, about);
server.py holds what is passed to launch (request-size limit, blocked paths, theme)."""
