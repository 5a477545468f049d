# genomeport node: gunicorn with uvicorn workers, running as a non-root user.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends samtools bcftools tabix curl bubblewrap \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 genomeport \
 && useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin genomeport-run
WORKDIR /app

COPY setup.cfg pyproject.toml README.md ./
COPY server/ server/
COPY handlers/ handlers/
COPY openapi/ openapi/
COPY workflows/ workflows/
COPY seed_data/ seed_data/
# Installed in place: the app reads openapi/, workflows/ and seed_data/ beside server/
RUN pip install --no-cache-dir -e . && mkdir -p /app/var && chown genomeport /app/var

USER genomeport
ENV GENOMEPORT_HOST=0.0.0.0 \
    GENOMEPORT_PORT=8080 \
    GENOMEPORT_VAR_DIR=/app/var
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD curl -fsS http://127.0.0.1:8080/health/live || exit 1
CMD ["genomeport", "serve"]
