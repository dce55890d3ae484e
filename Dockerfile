# syntax=docker/dockerfile:1
# Multi-stage build: a static gateway binary in a distroless image, running as a non-root user.
#   docker build -t rsgate .
#   docker run --rm -p 8080:8080 -p 9901:9901 rsgate -demo -admin :9901   (admin on all interfaces: in
#       production set admin_token_file too, see README.md, "Migrating REST services, operations, Kubernetes")
#   docker run --rm -p 8080:8080 -v $PWD/my.yaml:/etc/rsgate/config.yaml:ro rsgate
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/gateway ./cmd/gateway

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /usr/local/bin/gateway
COPY config.example.yaml /etc/rsgate/config.yaml
USER 65532:65532
EXPOSE 8080 9901
ENTRYPOINT ["/usr/local/bin/gateway"]
CMD ["-config", "/etc/rsgate/config.yaml"]
