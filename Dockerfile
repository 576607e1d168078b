# runbook: the incident-runbook engine, for running inside the cluster it heals.
#   docker build -t ghcr.io/example/runbook:0.1.0 .
# Two stages: dependencies are installed into a virtualenv in the first; the final image gets only that
# virtualenv on a slim Python base (no compiler, no pip cache, no source tree), runs as an unprivileged
# user and works with a read-only root filesystem (the run store and /tmp are volumes).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/runbook
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY integrations ./integrations
RUN /opt/runbook/bin/pip install . \
    && /opt/runbook/bin/pip uninstall --yes pip setuptools \
    && /opt/runbook/bin/python -m compileall -q /opt/runbook

FROM python:3.11-slim-bookworm
ENV PATH=/opt/runbook/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
RUN groupadd --system --gid 10001 runbook \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin runbook
COPY --from=build /opt/runbook /opt/runbook
# The built-in runbooks and their rehearsal scenarios (`runbook test runbooks/` works offline); in the
# cluster the runbooks come from the runbook-runbooks ConfigMap instead.
WORKDIR /app
COPY runbooks ./runbooks
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["runbook"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
