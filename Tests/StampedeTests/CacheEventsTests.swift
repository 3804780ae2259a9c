import Logging
@testable import Stampede
import StampedeTestSupport
import Testing

@Suite("Cache events")
struct CacheEventsTests {
    @Test func concurrentFirstLookupsAllWaitForTheOneSubscription() async throws {
        try await withSharedClient { client, _ async throws in
            let events = CacheEvents(client: client, channel: uniquePrefix(), logger: Logger(label: "test"), notifications: {})
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
            let events = CacheEvents(client: client, channel: uniquePrefix(), logger: Logger(label: "test"), notifications: {})
            #expect(await events.ensureListening(within: .seconds(10)))
            let seen = events.watch("k")
            defer { events.unwatch("k") }
            try await client.publish(Array(CacheEvents.message(.failed, key: "other").utf8), to: events.channel)
            try await client.publish(Array(CacheEvents.message(.failed, key: "k").utf8), to: events.channel)
            let woken = await events.wait(for: "k", after: seen, timeout: .seconds(10))
            #expect(woken?.0 == .failed)
            await events.close()
        }
    }
}
