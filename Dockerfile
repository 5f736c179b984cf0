# sandtrail, built statically (CGO_ENABLED=0: the helper's confinement needs
# no cgo, and a static binary runs in any image).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/sandtrail ./cmd/sandtrail

# The runtime image keeps a shell and coreutils: sandboxed commands need
# something to run. Landlock's default policy allows /bin /lib /usr /etc.
FROM debian:12-slim
COPY --from=build /out/sandtrail /usr/local/bin/sandtrail
ENTRYPOINT ["/usr/local/bin/sandtrail"]
CMD ["help"]
