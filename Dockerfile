# syntax=docker/dockerfile:1
# Images of the container stack (docker-compose.yml); build one with `docker build --target <stage> .`
#   functions  the function app on the Azure Functions host: function-app/ with the handler binary built for
#              glibc 2.28 by scripts/package-function-app.sh, the same build as for Azure (docs/azure-functions.md §8)
#   testagent  the test agent (producer, consumer, scenarios), with the handler binary beside it

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/package-function-app.sh /function-app \
 && cargo build --profile dist --locked -p handler -p testagent

# The Functions host image Microsoft lists for custom handlers ("Azure Functions in Linux containers": base:4, or
# base:4-appservice for SSH); the in-process dotnet:4 image's support ended on 10 November 2026. Pull it again
# and rebuild now and then: its tag moves with the host's fixes. FUNCTIONS_WORKER_RUNTIME=custom starts the handler.
FROM mcr.microsoft.com/azure-functions/base:4 AS functions
ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true \
    FUNCTIONS_WORKER_RUNTIME=custom
COPY --from=build /function-app /home/site/wwwroot

FROM debian:bookworm-slim AS testagent
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/dist/testagent /src/target/dist/handler /usr/local/bin/
ENTRYPOINT ["testagent"]
