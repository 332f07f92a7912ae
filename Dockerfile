# Porta backend image: the `porta` binary and the built browser app.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN rustup target add wasm32-unknown-unknown \
 && cargo xtask ui \
 && cargo build --release -p porta-backend -p porta-bridge \
 && cargo xtask bridges --release

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/porta porta && mkdir -p /var/lib/porta && chown porta /var/lib/porta
COPY --from=build /src/target/release/porta /src/target/release/porta-bridge /usr/local/bin/
COPY --from=build /src/target/ui /usr/share/porta/ui
# The static bridges "Add server" hands out (`/install.sh`, `/download/…`).
COPY --from=build /src/target/release/bridges /usr/share/porta/bridges
ENV PORTA_BRIDGE_DOWNLOADS=/usr/share/porta/bridges
USER porta
EXPOSE 8111
ENTRYPOINT ["/usr/local/bin/porta"]
