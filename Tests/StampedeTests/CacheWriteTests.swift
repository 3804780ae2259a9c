import Foundation
import MetricsTestKit
@_spi(Benchmarks) @testable import Stampede
import StampedeRedis
import StampedeTestSupport
import Testing

/// The write path: set, setAbsent, remove and a read without a loader.
@Suite("StampedeCache writes", .timeLimit(.minutes(2)))
struct CacheWriteTests {
    @Test("set stores a value that lookups get without their loader; cachedValue reads it; remove drops it")
    func setReadRemove() async throws {
        try await withSharedClient { client, _ in
            let cache = StampedeCache(client: client, configuration: .init(namespace: uniquePrefix(), policy: .init(earlyRefreshBeta: nil)))
            #expect(try await cache.cachedValue(for: "user:1", as: String.self) == nil)
            try await cache.set("Ada", for: "user:1")
            #expect(try await cache.cachedValue(for: "user:1", as: String.self) == "Ada")
            #expect(try await fetch(cache, "user:1") { "the loader must not run" } == "Ada")
            try await cache.setAbsent(for: "user:2")
            #expect(try await cache.valueIfPresent(for: "user:2", as: String.self) { "the loader must not run" } == nil)
            #expect(try await cache.cachedValue(for: "user:2", as: String.self) == nil)
            try await cache.remove("user:1")
            #expect(try await cache.cachedValue(for: "user:1", as: String.self) == nil)
            #expect(try await fetch(cache, "user:1") { "loaded" } == "loaded")
            // Bad input is refused before Redis: an empty key, a value over the limit.
            await #expect(throws: StampedeError.self) { try await cache.set("x", for: "") }
            let small = StampedeCache(client: client, configuration: .init(namespace: uniquePrefix(), maximumValueSize: 8))
            let tooLarge = await #expect(throws: StampedeError.self) { try await small.set(String(repeating: "x", count: 50), for: "k") }
            #expect(tooLarge?.code == .valueTooLarge)
            await cache.shutdown()
            await small.shutdown()
        }
    }

    @Test("add stores only over no fresh value: of callers racing to add, one wins")
    func addIfAbsent() async throws {
        try await withSharedClient { client, _ in
            let cache = StampedeCache(client: client, configuration: .init(namespace: uniquePrefix(), policy: .init(earlyRefreshBeta: nil)))
            let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<20 { group.addTask { try await cache.add("writer \(index)", for: "session") } }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(winners == 1)
            let stored = try #require(try await cache.cachedValue(for: "session", as: String.self))
            #expect(try await !cache.add("late", for: "session"))
            #expect(try await cache.cachedValue(for: "session", as: String.self) == stored)
            // "No such value" and a stale value are no obstacle.
            try await cache.setAbsent(for: "gone")
            #expect(try await cache.add("now", for: "gone"))
            try await cache.set("old", for: "stale", policy: .init(timeToLive: .milliseconds(1), staleWhileRevalidate: .seconds(60), earlyRefreshBeta: nil))
            try await Task.sleep(for: .milliseconds(10))
            #expect(try await cache.add("new", for: "stale"))
            #expect(try await cache.cachedValue(for: "stale", as: String.self) == "new")
            await cache.shutdown()
        }
    }

    @Test("set during a slow load wins: the load's fill is rejected and later reads get the value set")
    func setDuringALoad() async throws {
        try await withSharedClient { client, _ in
            let metrics = TestMetrics()
            let cache = StampedeCache.onClock(
                SystemClock(), client: client, configuration: .init(namespace: uniquePrefix(), policy: .init(earlyRefreshBeta: nil)),
                metricsFactory: metrics)
            let origin = FakeOrigin()
            origin.set("from the origin")
            let loading = Task { try await fetch(cache, "report") { try await origin.loadWhenReleased() } }
            await origin.waitForCalls(1)
            try await cache.set("written", for: "report")
            origin.release()
            // The loading caller gets what its own load returned...
            #expect(try await loading.value == "from the origin")
            // ...but it was not stored over the value set meanwhile.
            #expect(try metrics.cacheCounter("fills_rejected", of: cache).totalValue == 1)
            #expect(try await cache.cachedValue(for: "report", as: String.self) == "written")
            #expect(try await fetch(cache, "report") { "not called" } == "written")
            await cache.shutdown()
        }
    }

    @Test("a near cache in another process drops the old value when set writes a new one")
    func setReachesNearCachesElsewhere() async throws {
        try await withSharedClient { client, server in
            let namespace = uniquePrefix()
            let cache = StampedeCache(client: client, configuration: .init(namespace: namespace, policy: .init(earlyRefreshBeta: nil)))
            try await cache.set("old", for: "flag")
            let reader = try WorkerProcess(["near-reader", "--redis", server.url, "--namespace", namespace, "--key", "flag"], executable: .testWorker)
            #expect(await reader.line(startingWith: "ready") != nil)
            try reader.send(line: "read 0")
            #expect(await reader.line(startingWith: "read 0 ") == "read 0 old")
            try await cache.set("new", for: "flag")
            // Its near entry would last a minute: only the message can make it read "new".
            var round = 1
            let sawNew = await eventually {
                round += 1
                try? reader.send(line: "read \(round)")
                return await reader.line(startingWith: "read \(round) ", within: .seconds(2)) == "read \(round) new"
            }
            #expect(sawNew, "\(reader.output.suffix(3))")
            try reader.send(line: "exit")
            #expect(await reader.exitStatus(within: .seconds(10)) == 0)
            await cache.shutdown()
        }
    }
}
