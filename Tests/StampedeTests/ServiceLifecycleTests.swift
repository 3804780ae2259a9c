import Foundation
@_spi(Benchmarks) @testable import Stampede
import StampedeRedis
import StampedeTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The client and a cache as services of a `ServiceGroup`, in a real process sent SIGTERM.
@Suite("RedisClient and StampedeCache as services", .serialized, .timeLimit(.minutes(2)))
struct ServiceLifecycleTests {
    @Test("on SIGTERM, a background refresh finishes within the deadline and stores its value, then the group stops")
    func refreshFinishesBeforeTheStop() async throws {
        try await withSharedClient { client, server in
            let namespace = uniquePrefix()
            let worker = try WorkerProcess(
                ["service", "--redis", server.url, "--namespace", namespace, "--load-ms", "500", "--deadline-ms", "10000"],
                executable: .testWorker)
            #expect(await worker.line(startingWith: "served v1") != nil, "\(worker.output) \(worker.errorOutput)")
            #expect(await worker.line(startingWith: "refreshing") != nil)
            worker.signal(SIGTERM)
            #expect(await worker.exitStatus(within: .seconds(30)) == 0, "\(worker.errorOutput)")
            let output = worker.output
            let loaded = try #require(output.firstIndex(of: "loaded"), "\(output)")
            let stopped = try #require(output.firstIndex(of: "stopped"), "\(output)")
            #expect(loaded < stopped, "\(output)")
            let cache = StampedeCache(client: client, configuration: .init(namespace: namespace))
            #expect(try await cache.cachedValue(for: "report", as: String.self) == "v2", "the refresh stored its value")
        }
    }

    @Test("on SIGTERM with a loader that hangs, the group stops at the cache's deadline")
    func hungLoaderStopsAtTheDeadline() async throws {
        try await withSharedClient { _, server in
            let worker = try WorkerProcess(
                ["service", "--redis", server.url, "--namespace", uniquePrefix(), "--load-ms", "600000", "--deadline-ms", "300"],
                executable: .testWorker)
            #expect(await worker.line(startingWith: "refreshing") != nil, "\(worker.output) \(worker.errorOutput)")
            worker.signal(SIGTERM)
            #expect(await worker.exitStatus(within: .seconds(30)) == 0, "\(worker.errorOutput)")
            #expect(worker.output.contains("stopped") && !worker.output.contains("loaded"), "\(worker.output)")
        }
    }
}
