import Foundation
import MetricsTestKit
@_spi(Benchmarks) @testable import Stampede
import StampedeTestSupport
import Testing

@Suite("StampedeCache policies and metrics", .timeLimit(.minutes(2)))
struct CachePolicyTests {
    @Test("the freshness decision: fresh, due for early refresh, stale inside the window, expired")
    func freshnessDecision() {
        let entry = StoredEntry(value: [1], freshUntil: 10_000, staleUntil: 70_000, loadDuration: 200)
        let policy = CachePolicy(staleWhileRevalidate: .seconds(30))
        #expect(policy.freshness(of: entry, now: 9_000, earlyRefreshDraw: 0) == .fresh)
        // XFetch: 9,000 + 200 x 4 = 9,800 < 10,000 stays fresh; x 5 = 10,000 is due.
        #expect(policy.freshness(of: entry, now: 9_000, earlyRefreshDraw: 4) == .fresh)
        #expect(policy.freshness(of: entry, now: 9_000, earlyRefreshDraw: 5) == .dueForEarlyRefresh)
        #expect(policy.freshness(of: entry, now: 10_000, earlyRefreshDraw: 0) == .stale)
        #expect(policy.freshness(of: entry, now: 39_999, earlyRefreshDraw: 0) == .stale)
        // This policy's window (30 s) ends before the stored one (60 s); then the stored one.
        #expect(policy.freshness(of: entry, now: 40_000, earlyRefreshDraw: 0) == .expired)
        let longer = CachePolicy(staleWhileRevalidate: .seconds(120))
        #expect(longer.freshness(of: entry, now: 69_999, earlyRefreshDraw: 0) == .stale)
        #expect(longer.freshness(of: entry, now: 70_000, earlyRefreshDraw: 0) == .expired)
        #expect(CachePolicy().freshness(of: entry, now: 10_000, earlyRefreshDraw: 0) == .expired, "no window")
        #expect(CachePolicy(earlyRefreshBeta: nil).earlyRefreshDraw() == 0)
        // -ln(uniform) is exponential with mean 1: the draws spread, and average about beta.
        let draws = (0..<10_000).map { _ in CachePolicy(earlyRefreshBeta: 2).earlyRefreshDraw() }
        #expect(draws.allSatisfy { $0 >= 0 && $0.isFinite })
        #expect(Set(draws).count > 9_900)
        #expect(abs(draws.reduce(0, +) / 10_000 - 2) < 0.2)
    }

    @Test("durations in milliseconds: exact for windows (zero is no window), at least 1 for leases")
    func millisecondConversions() {
        #expect(Duration.zero.wholeMilliseconds == 0)
        #expect(Duration.zero.milliseconds == 1)
        #expect(Duration.microseconds(1_999).wholeMilliseconds == 1)
        #expect(Duration.seconds(3).wholeMilliseconds == 3_000)
        #expect(Duration.seconds(3).milliseconds == 3_000)
    }

    @Test("the hit path's hash fields decode into an entry; a foreign or broken one is nil")
    func entryFromHashFields() {
        func fields(_ meta: String, value: [UInt8] = [7, 8]) -> [RedisValue] { [.bulkString(value), .bulkString(Array(meta.utf8))] }
        #expect(CacheFormat.entry(hashFields: fields("2:100:200:30:0")) == StoredEntry(value: [7, 8], freshUntil: 100, staleUntil: 200, loadDuration: 30))
        #expect(CacheFormat.entry(hashFields: fields("2:100:200:0:1", value: []))?.isNegative == true)
        for broken in ["1:100:200:30:0", "2:100:200:30", "2:100:200:30:2", "2:100::30:0", "2:1x0:200:30:0", "2:100:200:30:0:", "",
                       "2:1000000000000000000000:200:30:0"] {
            #expect(CacheFormat.entry(hashFields: fields(broken)) == nil, "\(broken)")
        }
        #expect(CacheFormat.entry(hashFields: [.null, .null]) == nil, "absent")
        #expect(CacheFormat.entry(hashFields: [.bulkString([1])]) == nil)
    }

    @Test func earlyRefreshRefreshesAFreshValueOnceAndServesTheOldOneMeanwhile() async throws {
        try await withSharedClient { client, _ async throws in
            // A slow last load (delta 300 ms) and a beta so large that every draw asks for a
            // refresh long before the 60 s expiry (-ln(rand) is at least 1e-16, and
            // 1e20 x 1e-16 x 300 ms is far past 60 s; with beta 10,000 one draw in 50 did not);
            // one caller does it, everyone keeps the fresh value.
            // The load's time is measured on the cache's clock: the loader moves it on 300 ms.
            let policy = CachePolicy(timeToLive: .seconds(60), earlyRefreshBeta: 1e20)
            let clock = ManualClock()
            let cache = StampedeCache.onClock(clock, client: client, configuration: .init(namespace: uniquePrefix(), policy: policy))
            let origin = FakeOrigin()
            #expect(try await fetch(cache, "k") { clock.advance(by: .milliseconds(300)); return try await origin.load() } == "v1")
            origin.set("v2")
            // The refresh is held until every caller has its value.
            let values = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 { group.addTask { try await fetch(cache, "k") { try await origin.loadWhenReleased() } } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(values.allSatisfy { $0 == "v1" })
            origin.release()
            await cache.shutdown()  // lets the refresh finish
            #expect(origin.calls == 2, "one early refresh")
            #expect(try await fetch(cache, "k") { "unused" } == "v2")
        }
    }

    @Test func withoutEarlyRefreshAFreshValueIsNotReloaded() async throws {
        try await withSharedClient { client, _ async throws in
            let policy = CachePolicy(timeToLive: .seconds(60), earlyRefreshBeta: nil)
            // A load of 100 ms on the cache's clock.
            let clock = ManualClock()
            let cache = StampedeCache.onClock(clock, client: client, configuration: .init(namespace: uniquePrefix(), policy: policy))
            let origin = FakeOrigin()
            for _ in 0..<5 { _ = try await fetch(cache, "k") { clock.advance(by: .milliseconds(100)); return try await origin.load() } }
            await cache.shutdown()
            #expect(origin.calls == 1)
        }
    }

    @Test func jitterSpreadsExpiries() async throws {
        try await withSharedClient { client, _ async throws in
            let namespace = uniquePrefix()
            let policy = CachePolicy(timeToLive: .seconds(60), earlyRefreshBeta: nil, jitter: .seconds(30))
            let cache = StampedeCache(client: client, configuration: .init(namespace: namespace, policy: policy))
            var freshUntil: [Int] = []
            for index in 0..<20 {
                _ = try await fetch(cache, "k\(index)") { "v" }
                let meta = try await client.send("HGET", RedisArgument(CacheFormat.Keys(namespace: namespace, key: "k\(index)").entry), RedisArgument(CacheFormat.metadataField)).string!
                freshUntil.append(Int(meta.split(separator: ":")[1])!)  // 2:<fresh-until>:...
            }
            // Filled within a second of each other, yet spread over far more than a second.
            #expect(freshUntil.max()! - freshUntil.min()! > 5_000)
        }
    }

    @Test func countsHitsMissesLoadsAndCoalescedCallers() async throws {
        try await withSharedClient { client, _ async throws in
            let metrics = TestMetrics()
            let cache = StampedeCache(
                client: client, configuration: .init(namespace: uniquePrefix(), policy: .init(earlyRefreshBeta: nil)),
                metricsFactory: metrics)
            let origin = FakeOrigin()
            _ = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<10 { group.addTask { try await fetch(cache, "k") { try await origin.loadWhenReleased() } } }
                // The load ends only once every caller waits for it.
                #expect(await eventually { cache.waiting(for: "k") == 10 })
                origin.release()
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            _ = try await fetch(cache, "k") { "unused" }
            #expect(try metrics.cacheCounter("misses", of: cache).totalValue == 1)
            #expect(try metrics.cacheCounter("loads", of: cache).totalValue == 1)
            #expect(try metrics.cacheCounter("coalesced", of: cache).totalValue == 9)
            #expect(try metrics.cacheCounter("hits", of: cache).totalValue == 1)
            #expect(try metrics.cacheTimer("load", of: cache).values.count == 1)
        }
    }
}
