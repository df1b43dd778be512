FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /picd ./cmd/picd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /picd /picd
USER nonroot
ENTRYPOINT ["/picd"]
