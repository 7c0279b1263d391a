# The app as a Hugging Face Space (Docker SDK) or any container host: python app.py on port 7860.
# CPU only: torch comes from PyTorch's CPU index first, so requirements.txt's pin (torch==2.13.0,
# which the local "+cpu" build satisfies) never pulls the multi-GB CUDA build from PyPI.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    TOKENIZERS_PARALLELISM=false

# Spaces run containers as user 1000; the app writes saved models to checkpoints/, so it owns the code.
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

COPY --chown=user requirements.txt .
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==$(sed -n 's/^torch==//p' requirements.txt)" \
 && pip install -r requirements.txt

COPY --chown=user . .
USER user

EXPOSE 7860
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860", "--public"]
