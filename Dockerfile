# rlvr-verifier: slim, non-root, bubblewrap for the code sandbox.
#   docker build -t rlvr-verifier .
#   docker run -p 8000:8000 --security-opt seccomp=unconfined rlvr-verifier
# (bubblewrap needs unprivileged user namespaces, which Docker's default
# seccomp profile blocks; without them the code stage reports `down` in
# /readyz and code items abstain - math and judge keep working.)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# bubblewrap isolates code runs; Debian's /usr/bin/python3 is the interpreter
# the sandbox runs solutions with (the image's own Python lives in /usr/local).
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap python3 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin verifier

# Same install path as the Makefile: a venv and `pip install` of pyproject.toml.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY verifiers ./verifiers
COPY service ./service
COPY rlvr_client ./rlvr_client
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install . \
    && rm -rf /src

ENV PATH=/opt/venv/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=8000
WORKDIR /app
USER verifier
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

CMD ["rlvr-verifier", "serve", "--host", "0.0.0.0", "--port", "8000"]
