@testable import Stampede
import StampedeTestSupport
import Testing

@Suite("Hot keys")
struct HotKeyTests {
    func nearCache(_ client: RedisClient, namespace: String, timeToLive: Duration = .seconds(60)) -> StampedeCache {
        StampedeCache(client: client, configuration: .init(
            namespace: namespace, policy: .init(timeToLive: timeToLive, earlyRefreshBeta: nil),
            nearCache: .init(capacity: 100, timeToLive: .seconds(30))))
    }

    @Test func aThousandConcurrentReadsOfAFreshKeyShareOneRoundTrip() async throws {
        try await withPrivateServer { server in
            let configuration = try RedisConfiguration(url: server.url)
            try await withClient(configuration) { control async throws in
                let writer = StampedeCache(client: control, configuration: .init(namespace: "n"))
                _ = try await fetch(writer, "hot") { "v" }
                // A client of its own, so that its count is this storm's alone, warmed up.
                let reader = try RedisClient(configuration: configuration)
                let cache = StampedeCache(client: reader, configuration: .init(namespace: "n", policy: .init(earlyRefreshBeta: nil)))
                try await cache.prepare()
                let before = reader.commandsSent
                // Redis holds every command for a moment, so all thousand reads overlap.
                try await control.send("CLIENT", "PAUSE", "300", "ALL")
                let values = try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<1_000 { group.addTask { try await fetch(cache, "hot") { "unused" } } }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
                #expect(values.count == 1_000 && values.allSatisfy { $0 == "v" })
                // One round trip for a thousand reads: TIME and HMGET, written together.
                #expect(reader.commandsSent - before == 2)
                await cache.shutdown()
                await reader.shutdown()
            }
        }
    }

    @Test func theNearCacheServesWithoutRedisUntilAFillElsewhereDropsIt() async throws {
        try await withSharedClient { client, server async throws in
            let namespace = uniquePrefix()
            let otherClient = try RedisClient(configuration: RedisConfiguration(url: server.url))
            let here = nearCache(client, namespace: namespace)
            let elsewhere = StampedeCache(client: otherClient, configuration: .init(namespace: namespace, policy: .init(earlyRefreshBeta: nil)))
            try await here.prepare()
            _ = try await fetch(elsewhere, "k") { "v1" }
            #expect(try await fetch(here, "k") { "unused" } == "v1")   // read from Redis, kept near
            let before = client.commandsSent
            for _ in 0..<100 { #expect(try await fetch(here, "k") { "unused" } == "v1") }
            #expect(client.commandsSent == before, "near hits cost no round trip")

            // Another process invalidates and fills: the near entry goes at once.
            let clock = ContinuousClock()
            let start = clock.now
            try await elsewhere.invalidate("k")
            _ = try await fetch(elsewhere, "k") { "v2" }
            #expect(await eventually(within: .seconds(5)) { (try? await fetch(here, "k") { "unused" }) == "v2" })
            let took = clock.now - start
            #expect(took < .seconds(2), "the near entry was dropped \(took) after the change")
            await here.shutdown()
            await otherClient.shutdown()
        }
    }

    @Test func anInvalidationInThisProcessDropsTheNearEntryAtOnce() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = nearCache(client, namespace: uniquePrefix())
            try await cache.prepare()
            _ = try await fetch(cache, "k") { "v1" }
            _ = try await fetch(cache, "k") { "v1" }
            #expect(cache.near?.count == 1)
            try await cache.invalidate("k")
            #expect(cache.near?.count == 0)
            #expect(try await fetch(cache, "k") { "v2" } == "v2")
            await cache.shutdown()
        }
    }

    @Test func theNearCacheIsClearedWhenItsSubscriptionIsInterrupted() async throws {
        try await withPrivateServer { server in
            var configuration = try RedisConfiguration(url: server.url)
            configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(50))
            try await withClient(configuration) { client async throws in
                let cache = nearCache(client, namespace: "n")
                try await cache.prepare()
                _ = try await fetch(cache, "k") { "v" }
                _ = try await fetch(cache, "k") { "v" }
                #expect(cache.near?.count == 1)
                // Messages may be missed while the subscriber reconnects: nothing stays near.
                try await client.send("CLIENT", "KILL", "TYPE", "pubsub")
                #expect(await eventually { cache.near?.count == 0 })
                await cache.shutdown()
            }
        }
    }

    @Test func theNearCacheNeverServesAValuePastItsFreshTime() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = nearCache(client, namespace: uniquePrefix(), timeToLive: .milliseconds(300))
            try await cache.prepare()
            let origin = FakeOrigin()
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v1")
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v1")  // from Redis, kept near
            origin.set("v2")
            try await Task.sleep(for: .milliseconds(400))
            // Past its 300 ms fresh time: not from the near cache (which holds it for 30 s).
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v2")
            await cache.shutdown()
        }
    }
}
