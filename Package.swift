// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "stampede",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "StampedeRedis", targets: ["StampedeRedis"]),
        .library(name: "Stampede", targets: ["Stampede"]),
        .library(name: "EmbeddedRedis", targets: ["EmbeddedRedis"]),
        .library(name: "StampedeHummingbird", targets: ["StampedeHummingbird"]),
        .executable(name: "stampede", targets: ["StampedeTool"]),
    ],
    traits: [
        // Off by default: BoringSSL adds minutes to a clean build, and many users talk to a
        // Redis on a private network. Enable it on the dependency line:
        // .package(url: ..., branch: "main", traits: ["TLS"])
        .trait(name: "TLS", description: "TLS connections (rediss://) through swift-nio-ssl."),
        // Off by default too: the StampedeHummingbird product (a response-caching middleware and
        // a PersistDriver) builds Hummingbird. .package(url: ..., traits: ["Hummingbird"])
        .trait(name: "Hummingbird", description: "The StampedeHummingbird product: middleware and PersistDriver for Hummingbird 2."),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.98.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.1.0"),
        // `swift package generate-documentation --target Stampede` builds the DocC catalog.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin.git", from: "1.4.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
    ],
    targets: [
        // hiredis from the system (Debian: libhiredis-dev): its RESP parser.
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // The Redis client: NIO channels, pipelining, reconnects, scripts, pub/sub.
        .target(
            name: "StampedeRedis",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
                .product(name: "NIOTLS", package: "swift-nio", condition: .when(traits: ["TLS"])),
            ]
        ),
        // The cache (StampedeCache) and the locks (RedisMutex, Redlock).
        .target(
            name: "Stampede",
            dependencies: [
                "StampedeRedis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // Hummingbird 2: a response-caching middleware and a PersistDriver (the Hummingbird trait).
        .target(
            name: "StampedeHummingbird",
            dependencies: [
                "Stampede", "StampedeRedis",
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HTTPTypes", package: "swift-http-types", condition: .when(traits: ["Hummingbird"])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Throwaway redis-server processes: for the test suites and for runs without a Redis URL.
        .target(name: "EmbeddedRedis"),
        // The `stampede` command: storms, benchmarks and reliability checks against a Redis.
        .executableTarget(
            name: "StampedeTool",
            dependencies: [
                "Stampede",
                "StampedeRedis",
                "EmbeddedRedis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Helpers the test suites share: servers, clients, processes, waiting.
        .target(
            name: "StampedeTestSupport",
            dependencies: [
                "StampedeRedis", "EmbeddedRedis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/StampedeTestSupport"
        ),
        // The processes of the multi-process tests (a cache, a lock), started by the tests.
        .executableTarget(
            name: "StampedeTestWorker",
            dependencies: [
                "Stampede", "StampedeRedis",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/StampedeTestWorker"
        ),
        .testTarget(
            name: "StampedeRedisTests",
            dependencies: [
                "StampedeTestSupport", "StampedeRedis", "EmbeddedRedis", "CHiredis",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // The app the middleware tests run twice, as two processes on one Redis.
        .executableTarget(
            name: "StampedeHummingbirdTestApp",
            dependencies: [
                "StampedeHummingbird", "Stampede", "StampedeRedis",
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HTTPTypes", package: "swift-http-types", condition: .when(traits: ["Hummingbird"])),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/StampedeHummingbirdTestApp"
        ),
        .testTarget(
            name: "StampedeHummingbirdTests",
            dependencies: [
                "StampedeHummingbird", "Stampede", "StampedeRedis", "EmbeddedRedis",
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HummingbirdTesting", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HTTPTypes", package: "swift-http-types", condition: .when(traits: ["Hummingbird"])),
            ]
        ),
        .testTarget(
            name: "StampedeToolTests",
            dependencies: ["StampedeTool", "StampedeTestSupport", "StampedeRedis", "EmbeddedRedis"]
        ),
        .testTarget(
            name: "StampedeTests",
            dependencies: [
                "Stampede", "StampedeTestSupport", "StampedeRedis", "EmbeddedRedis",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ]
)
