# replyassets: one image for the Dagster code location and the training program.
#
#   CPU (code location, local profile, CI):
#     docker build -t replyassets:cpu .
#   CUDA (GPU training pods / hosts; PyPI's Linux torch wheel bundles the CUDA runtime):
#     docker build -t replyassets:cuda --build-arg TORCH_VARIANT=cuda .
#
# Registry packages only (PyPI, and the PyTorch CPU wheel index for the CPU variant).
FROM python:3.11-slim AS base

ARG TORCH_VARIANT=cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TOKENIZERS_PARALLELISM=false \
    HF_HOME=/cache/huggingface \
    DAGSTER_HOME=/opt/dagster/home

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential git \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# torch first, from the index matching the variant (cached layer)
RUN if [ "$TORCH_VARIANT" = "cpu" ]; then \
        pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu; \
    else \
        pip install torch==2.13.0; \
    fi

# then the project and its pinned dependencies. Installed in place (editable): the code reads
# config/, data/sample and pyproject.toml's [tool.dg] (the defs folder) relative to /app.
COPY pyproject.toml README.md workspace.yaml ./
COPY config ./config
COPY data/sample ./data/sample
COPY replyassets ./replyassets
RUN pip install -e . && mkdir -p "$DAGSTER_HOME" /cache/huggingface /shared

COPY dagster.yaml /opt/dagster/home/dagster.yaml

# A training pod runs `python -m replyassets.training.train` (the launcher passes the command);
# by default the image serves the code location over gRPC.
EXPOSE 4000
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "replyassets.definitions"]
