# Pinned images (a tag and its digest would be stricter; the tags name exact releases).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The release picd version prints: docker build --build-arg VERSION=v1.2.3 .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-X main.version=${VERSION}" -o /picd ./cmd/picd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /picd /picd
USER nonroot
ENTRYPOINT ["/picd"]
