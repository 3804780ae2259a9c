// swift-tools-version:6.2
// The benchmark suites live in their own package so that `swift build` and `swift test`
// of the main package never compile them. Run with: swift package benchmark
import PackageDescription

let package = Package(
    name: "StampedeBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "stampede", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "RedisClient",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "StampedeRedis", package: "stampede"),
                .product(name: "EmbeddedRedis", package: "stampede"),
            ],
            path: "Benchmarks/RedisClient",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "CacheHit",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Stampede", package: "stampede"),
                .product(name: "StampedeRedis", package: "stampede"),
                .product(name: "EmbeddedRedis", package: "stampede"),
            ],
            path: "Benchmarks/CacheHit",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "CachePaths",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Stampede", package: "stampede"),
                .product(name: "StampedeRedis", package: "stampede"),
            ],
            path: "Benchmarks/CachePaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
