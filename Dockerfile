# Pinned images: exact releases (add @sha256:… digests to pin the bytes too).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The release picd version prints: docker build --build-arg VERSION=v1.2.3 .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-X main.version=${VERSION}" -o /picd ./cmd/picd
# /data owned by nonroot (65532): a named volume mounted there starts with
# this ownership, so picd can write its database without a root step.
RUN mkdir -m 700 /data-dir

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /picd /picd
COPY --from=build --chown=65532:65532 /data-dir /data
# The same for the signer's own directory and the volume of its socket.
COPY --from=build --chown=65532:65532 /data-dir /signer
COPY --from=build --chown=65532:65532 /data-dir /run/signer
USER nonroot
ENTRYPOINT ["/picd"]
