# LambdaService: multi-stage build. Not built in this project's CI (no Docker engine there); reviewed by hand.
# Build:  docker build -t lambdaservice .
# Run:    docker run -p 8080:8080 -v lambdaservice-data:/data -e Auth__ApiKeys__0__Key=change-me -e Auth__ApiKeys__0__Tenant=team lambdaservice
# Nodes:  docker compose up (compose.yaml: PostgreSQL, an API node, a CPU worker, a GPU worker)

FROM mcr.microsoft.com/dotnet/sdk:10.0-noble AS build
# cpu (default) or cuda: the GPU image (`docker build --build-arg TORCH_BACKEND=cuda -t lambdaservice:cuda .`) takes TorchSharp's
# CUDA natives (src/Measurement: TorchBackend, LibTorchCudaPackage) and needs a runtime stage with the CUDA 12.8 libraries for
# libtorch and CUDA 13 (libcublasLt.so.13) for ONNX Runtime's CUDA provider, e.g. nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04
# plus the ASP.NET runtime; the NVIDIA container toolkit mounts the driver.
ARG TORCH_BACKEND=cpu
WORKDIR /src
COPY global.json Directory.Build.props Directory.Build.targets Directory.Packages.props LambdaService.sln appsettings.json ./
COPY build/ build/
COPY src/ src/
RUN dotnet publish src/Api/Api.csproj -c Release -o /app -p:TorchBackend=$TORCH_BACKEND

# The ASP.NET runtime image is Ubuntu 24.04 based: its libstdc++ provides GLIBCXX_3.4.32, so the build's
# libstdc++ patch for libLibTorchSharp.so does nothing there (it only acts where the symbol version is missing).
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app ./
ENV ASPNETCORE_URLS=http://+:8080 \
    Storage__Root=/data \
    DOTNET_gcServer=0
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["dotnet", "/app/LambdaService.Api.dll"]
# Every role runs from this one image: the API node (default command), worker nodes with the "worker" verb, e.g.
# `docker run -e Storage__Provider=postgres -e ConnectionStrings__Postgres=… lambdaservice worker`; compose.yaml wires
# PostgreSQL, an API node, a CPU and a GPU worker. (ONNX Runtime's CUDA provider needs the CUDA 13 libraries in the image
# or mounted from the host.)
