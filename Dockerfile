# shipline-worker (and the shipline CLI) in one image.
#
#   docker build -t shipline .
#   docker run --rm -v "$PWD/examples:/workspace/examples" -e TEMPORAL_ADDRESS=host.docker.internal:7233 \
#       shipline --config /workspace/examples/platform.yaml
#
# The binaries are static (no cgo), so the build image's Debian release does
# not matter; the runtime image is bookworm because it still ships OpenJDK 17.

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags='-s -w' -o /out/shipline-worker ./worker && \
    go build -trimpath -ldflags='-s -w' -o /out/shipline ./starter

FROM debian:bookworm-slim
# git: mirrors, tags and pushes; python3 + build/wheel/setuptools: Python
# wheels (python3 -m build); JDK 17: Scala/Java pipelines (their build tool,
# e.g. sbt or mvn, comes from the project's own build command or wrapper).
RUN apt-get update && \
    apt-get install -y --no-install-recommends \
        ca-certificates git openssh-client \
        python3 python3-build python3-wheel python3-setuptools python3-venv python3-pip \
        openjdk-17-jdk-headless && \
    rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 --user-group shipline && \
    mkdir -p /workspace && chown shipline:shipline /workspace
COPY --from=build /out/shipline-worker /out/shipline /usr/local/bin/
USER shipline
WORKDIR /workspace
ENV HOME=/home/shipline
ENTRYPOINT ["shipline-worker"]
CMD ["--config", "/workspace/examples/platform.yaml"]
