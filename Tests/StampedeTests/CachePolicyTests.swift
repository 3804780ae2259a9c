import Foundation
import MetricsTestKit
@testable import Stampede
import StampedeTestSupport
import Testing

@Suite("StampedeCache policies and metrics")
struct CachePolicyTests {
    @Test func earlyRefreshRefreshesAFreshValueOnceAndServesTheOldOneMeanwhile() async throws {
        try await withSharedClient { client, _ async throws in
            // A slow last load (delta 300 ms) and a huge beta: XFetch asks for a refresh long
            // before the 60 s expiry; one caller does it, everyone keeps the fresh value.
            let policy = CachePolicy(timeToLive: .seconds(60), earlyRefreshBeta: 10_000)
            let cache = StampedeCache(client: client, configuration: .init(namespace: uniquePrefix(), policy: policy))
            let origin = FakeOrigin()
            #expect(try await fetch(cache, "k") { try await origin.load(after: .milliseconds(300)) } == "v1")
            origin.set("v2")
            let values = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 { group.addTask { try await fetch(cache, "k") { try await origin.load(after: .milliseconds(300)) } } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(values.allSatisfy { $0 == "v1" })
            await cache.shutdown()  // lets the refresh finish
            #expect(origin.calls == 2, "one early refresh")
            #expect(try await fetch(cache, "k") { "unused" } == "v2")
        }
    }

    @Test func withoutEarlyRefreshAFreshValueIsNotReloaded() async throws {
        try await withSharedClient { client, _ async throws in
            let policy = CachePolicy(timeToLive: .seconds(60), earlyRefreshBeta: nil)
            let cache = StampedeCache(client: client, configuration: .init(namespace: uniquePrefix(), policy: policy))
            let origin = FakeOrigin()
            for _ in 0..<5 { _ = try await fetch(cache, "k") { try await origin.load(after: .milliseconds(100)) } }
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
                freshUntil.append(try await client.send("HGET", RedisArgument("{\(namespace):k\(index)}"), "fu").int!)
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
                for _ in 0..<10 { group.addTask { try await fetch(cache, "k") { try await origin.load(after: .milliseconds(100)) } } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            _ = try await fetch(cache, "k") { "unused" }
            #expect(try metrics.expectCounter("stampede.cache.misses").totalValue == 1)
            #expect(try metrics.expectCounter("stampede.cache.loads").totalValue == 1)
            #expect(try metrics.expectCounter("stampede.cache.coalesced").totalValue == 9)
            #expect(try metrics.expectCounter("stampede.cache.hits").totalValue == 1)
            #expect(try metrics.expectTimer("stampede.cache.load").values.count == 1)
        }
    }
}
