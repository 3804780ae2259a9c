import StampedeTestSupport
import EmbeddedRedis
import Synchronization
import Testing
import StampedeRedis

@Suite("Pub/sub", .serialized)
struct PubSubTests {
    @Test func deliversMessagesPublishedAfterSubscribeReturns() async throws {
        try await withSharedClient { client, _ in
            let channel = uniquePrefix() + "events"
            let received = try await client.subscribe(to: [channel]) { events in
                for index in 0..<3 { try await client.publish(Array("m\(index)".utf8), to: channel) }
                var payloads: [String] = []
                for try await event in events {
                    guard case .message(let message) = event else { continue }
                    #expect(message.channel == channel)
                    payloads.append(String(decoding: message.payload, as: UTF8.self))
                    if payloads.count == 3 { break }
                }
                return payloads
            }
            #expect(received == ["m0", "m1", "m2"])
            // Leaving the scope unsubscribed.
            #expect(await eventually { (try? await client.publish([1], to: channel)) == 0 })
        }
    }

    @Test func channelsStaySubscribedWhileAnySubscriptionUsesThem() async throws {
        try await withSharedClient { client, _ in
            let channel = uniquePrefix() + "shared"
            try await client.subscribe(to: [channel]) { outer in
                try await client.subscribe(to: [channel]) { _ in }
                // The inner scope ended; the outer subscription must still receive.
                try await client.publish(Array("still".utf8), to: channel)
                var iterator = outer.makeAsyncIterator()
                #expect(try await iterator.next() == .message(RedisPubSubMessage(channel: channel, payload: Array("still".utf8))))
            }
        }
    }

    @Test func resubscribesAfterARestartAndSaysMessagesMayHaveBeenMissed() async throws {
        try await withPrivateServer { server in
            var configuration = try RedisConfiguration(url: server.url)
            configuration.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(100))
            try await withClient(configuration) { client in
                try await client.subscribe(to: ["a", "b"]) { events in
                    var iterator = events.makeAsyncIterator()
                    try await client.publish(Array("before".utf8), to: "a")
                    #expect(try await iterator.next() == .message(RedisPubSubMessage(channel: "a", payload: Array("before".utf8))))

                    try await server.restart()
                    #expect(try await iterator.next() == .messagesMayHaveBeenMissed)
                    // Both channels are subscribed again on the new server.
                    #expect(await eventually { (try? await client.send("PUBSUB", "NUMSUB", "a", "b"))
                        == .array([.bulkString(Array("a".utf8)), .integer(1), .bulkString(Array("b".utf8)), .integer(1)]) })
                    try await client.publish(Array("after".utf8), to: "b")
                    let next = try await iterator.next()
                    #expect(next == .message(RedisPubSubMessage(channel: "b", payload: Array("after".utf8))))
                }
            }
        }
    }

    @Test func subscribingWhileRedisIsDownFailsWithTheConnectError() async throws {
        let server = try await RedisServer.start()
        let url = server.url
        server.stop()
        var configuration = try RedisConfiguration(url: url)
        configuration.connectTimeout = .milliseconds(500)
        try await withClient(configuration) { client in
            let error = await redisError { try await client.subscribe(to: ["x"]) { _ in } }
            #expect(error?.code == .connectionRefused)
        }
    }

    @Test func shutdownEndsSubscriptions() async throws {
        let server = try await SharedServer.instance.get()
        let client = try RedisClient(configuration: RedisConfiguration(url: server.url))
        let ended = Mutex(false)
        let error = await redisError {
            try await client.subscribe(to: [uniquePrefix()]) { events in
                Task { await client.shutdown() }
                for try await _ in events {}
                ended.withLock { $0 = true }
            }
        }
        #expect(error?.code == .clientClosed)
        #expect(!ended.withLock { $0 })
    }
}
