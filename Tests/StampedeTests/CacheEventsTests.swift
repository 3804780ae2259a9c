import Logging
@_spi(Benchmarks) @testable import Stampede
import StampedeTestSupport
import Testing

@Suite("Cache events", .timeLimit(.minutes(2)))
struct CacheEventsTests {
    @Test func concurrentFirstLookupsAllWaitForTheOneSubscription() async throws {
        try await withSharedClient { client, _ async throws in
            let events = CacheEvents(client: client, channel: uniquePrefix(), logger: Logger(label: "test"), clock: SystemClock(), notifications: {})
            let ready = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<10 { group.addTask { await events.ensureListening(within: .seconds(10)) } }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(ready == Array(repeating: true, count: 10))
            #expect(try await client.send("PUBSUB", "NUMSUB", RedisArgument(events.channel)).array?.last == .integer(1))
            await events.close()
        }
    }

    @Test func aWaiterIsWokenByItsKeysMessageAndToldWhatHappened() async throws {
        try await withSharedClient { client, _ in
            let events = CacheEvents(client: client, channel: uniquePrefix(), logger: Logger(label: "test"), clock: SystemClock(), notifications: {})
            #expect(await events.ensureListening(within: .seconds(10)))
            let seen = events.watch("k")
            defer { events.unwatch("k") }
            try await client.publish(Array(CacheFormat.Message.failed(key: "other").payload.utf8), to: events.channel)
            try await client.publish(Array(CacheFormat.Message.failed(key: "k").payload.utf8), to: events.channel)
            let woken = await events.wait(for: "k", after: seen, until: .now + .seconds(10))
            #expect(woken?.kind == .failed)
            await events.close()
        }
    }

    @Test func readsAFillMessageThatCarriesItsValue() throws {
        let payload = Array("V3:a:11700000000123:1699999999000:0hello".utf8)
        guard case .filled(let key, let entry?)? = CacheFormat.Message(payload: payload) else {
            Issue.record("not read as a fill with its value")
            return
        }
        #expect(key == "a:1")
        #expect(entry.freshUntil == 1_700_000_000_123)
        #expect(entry.value == Array("hello".utf8))
        #expect(!entry.isNegative)
        guard case .filled(_, let negative?)? = CacheFormat.Message(payload: Array("V1:k5:4:1".utf8)) else {
            Issue.record("not read as a negative fill")
            return
        }
        #expect(negative.isNegative && negative.value.isEmpty)
        for broken in ["V", "Vx:k", "V9:k1:2:0", "V1:k:", "V1:k1:2", "V1:k1:2:x", "", "Xk"] {
            #expect(CacheFormat.Message(payload: Array(broken.utf8)) == nil, "\(broken)")
        }
        for message in [CacheFormat.Message.filled(key: "a b", entry: nil), .failed(key: "\u{e9}"), .invalidated(key: "k:1")] {
            #expect(CacheFormat.Message(payload: Array(message.payload.utf8)) == message)
        }
    }

    @Test func aWaiterGetsTheFilledValueFromTheMessage() async throws {
        try await withSharedClient { client, server async throws in
            let namespace = uniquePrefix()
            let otherClient = try RedisClient(configuration: RedisConfiguration(url: server.url))
            let policy = CachePolicy(earlyRefreshBeta: nil, waitTimeout: .seconds(30))
            let leader = StampedeCache(client: client, configuration: .init(namespace: namespace, policy: policy))
            let clock = ManualClock()
            let follower = StampedeCache.onClock(clock, client: otherClient, configuration: .init(namespace: namespace, policy: policy))
            try await follower.prepare()
            let origin = FakeOrigin()
            origin.set("filled")
            let leading = Task { try await fetch(leader, "k") { try await origin.loadWhenReleased() } }
            await origin.waitForCalls(1)  // the leader holds the lease
            let before = otherClient.commandsSent
            let following = Task { try await fetch(follower, "k") { "must not be called" } }
            await clock.waitForSleepers(1)  // the follower waits for the fill
            origin.release()
            #expect(try await following.value == "filled")
            // The hit try and one lease-get, then the value arrives with the fill message:
            // no read after the wake-up.
            #expect(otherClient.commandsSent - before == 3)
            _ = try await leading.value
            await follower.shutdown()
            await otherClient.shutdown()
        }
    }
}
