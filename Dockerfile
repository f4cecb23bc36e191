# The manager image: a static binary on distroless, non-root. `make image`
# builds the same image without a container engine (hack/image: same user,
# entrypoint and labels; its test checks this file against them).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/manager .

FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.source="https://github.com/auditops/auditops"
LABEL org.opencontainers.image.version="${VERSION}"
LABEL org.opencontainers.image.licenses="Apache-2.0"
LABEL org.opencontainers.image.title="auditops manager"
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
