@_spi(Benchmarks) @testable import Stampede
import StampedeTestSupport
import Testing

/// The Swift side of the cache's format against the Lua side, on a real server: what one
/// writes, the other reads the same.
@Suite("CacheFormat against the scripts", .timeLimit(.minutes(2)))
struct CacheFormatTests {
    /// Runs the fill script for `key` under a lease taken by the lease-get script, and
    /// returns the message it published.
    func fill(_ client: RedisClient, namespace: String, key: String, value: [UInt8], negative: Bool = false) async throws -> [UInt8] {
        let keys = CacheFormat.Keys(namespace: namespace, key: key)
        let channel = CacheFormat.channel(namespace: namespace)
        let reply = try CacheFormat.LeaseGetReply(try await client.run(
            CacheScripts.leaseGet, keys: keys.all, arguments: ["token", "10000", "0"]))
        #expect(reply.role == .leader)
        return try await client.subscribe(to: [channel]) { messages in
            let stored = try await client.run(
                CacheScripts.fill, keys: keys.all,
                arguments: [
                    RedisArgument(reply.fence), RedisArgument(bytes: value), "60000", "30000", "12", negative ? "1" : "0", "token",
                    RedisArgument(channel), RedisArgument(CacheFormat.Message.filled(key: key, entry: nil).payload), RedisArgument(key),
                ])
            #expect(stored == .integer(1))
            for try await case .message(let message) in messages { return message.payload }
            throw StampedeError(.redisUnavailable, "the subscription ended")
        }
    }

    @Test("what the fill script stores, the hit path reads; its message carries the same entry", arguments: ["k", "user:42 \u{e9}", "a:b}{c"])
    func fillRoundTrip(key: String) async throws {
        try await withSharedClient { client, _ in
            let namespace = uniquePrefix()
            let value = Array("\"hello\"".utf8)
            let payload = try await fill(client, namespace: namespace, key: key, value: value)
            let fields = try #require(try await client.send(CacheFormat.hitRead(namespace: namespace, key: key)).array)
            let stored = try #require(CacheFormat.entry(hashFields: fields))
            #expect(stored.value == value && !stored.isNegative && stored.loadDuration == 12)
            #expect(stored.staleUntil - stored.freshUntil == 30_000)
            guard case .filled(let heardKey, let carried?)? = CacheFormat.Message(payload: payload) else {
                Issue.record("the fill message is not a fill with its value: \(String(decoding: payload, as: UTF8.self))")
                return
            }
            #expect(heardKey == key)
            #expect(carried.value == value && carried.freshUntil == stored.freshUntil && !carried.isNegative)
        }
    }

    @Test("a negative fill, and a value too large for the message, round-trip too")
    func negativeAndLargeFills() async throws {
        try await withSharedClient { client, _ in
            let namespace = uniquePrefix()
            let negative = try await fill(client, namespace: namespace, key: "none", value: [], negative: true)
            guard case .filled("none", let entry?)? = CacheFormat.Message(payload: negative) else {
                Issue.record("not a negative fill")
                return
            }
            #expect(entry.isNegative)
            let fields = try #require(try await client.send(CacheFormat.hitRead(namespace: namespace, key: "none")).array)
            #expect(CacheFormat.entry(hashFields: fields)?.bytes == nil)

            let large = [UInt8](repeating: UInt8(ascii: "x"), count: CacheFormat.largestValueInMessage + 1)
            let plain = try await fill(client, namespace: namespace, key: "large", value: large)
            #expect(CacheFormat.Message(payload: plain) == .filled(key: "large", entry: nil), "waiters read it back")
            let largeFields = try #require(try await client.send(CacheFormat.hitRead(namespace: namespace, key: "large")).array)
            #expect(CacheFormat.entry(hashFields: largeFields)?.value == large)
        }
    }

    @Test("metadata written by Swift is read by the lease-get script as the same entry, at the digit limit too")
    func metadataRoundTrip() async throws {
        try await withSharedClient { client, _ in
            let namespace = uniquePrefix()
            let limit = Int(String(repeating: "9", count: CacheFormat.maximumDigits))!
            for (index, entry) in [
                StoredEntry(value: Array("v".utf8), freshUntil: 4_000_000_000_000, staleUntil: 4_000_000_060_000, loadDuration: 7),
                StoredEntry(value: [], freshUntil: limit, staleUntil: limit, loadDuration: limit, isNegative: true),
            ].enumerated() {
                let keys = CacheFormat.Keys(namespace: namespace, key: "k\(index)")
                try await client.send("HSET", RedisArgument(keys.entry), "v", RedisArgument(bytes: entry.value), "f", "1",
                                      "m", RedisArgument(CacheFormat.metadata(of: entry)))
                let reply = try CacheFormat.LeaseGetReply(try await client.run(CacheScripts.leaseGet, keys: keys.all, arguments: ["t", "1000", "0"]))
                #expect(reply.state.entry == entry && reply.repairs.isEmpty)
                let fields = try #require(try await client.send(CacheFormat.hitRead(namespace: namespace, key: "k\(index)")).array)
                #expect(CacheFormat.entry(hashFields: fields) == entry)
            }
            // One digit more: unreadable on both sides.
            let keys = CacheFormat.Keys(namespace: namespace, key: "long")
            try await client.send("HSET", RedisArgument(keys.entry), "v", "x", "m", RedisArgument("2:\(limit)0:1:1:0"))
            let fields = try #require(try await client.send(CacheFormat.hitRead(namespace: namespace, key: "long")).array)
            #expect(CacheFormat.entry(hashFields: fields) == nil)
            let reply = try CacheFormat.LeaseGetReply(try await client.run(CacheScripts.leaseGet, keys: keys.all, arguments: ["t", "1000", "0"]))
            #expect(reply.repairs == .entry)
        }
    }

    @Test("the messages Swift sends for failures and invalidations read back as sent")
    func swiftMessagesRoundTrip() {
        for message in [CacheFormat.Message.failed(key: "k"), .invalidated(key: "user:42 \u{e9}"), .filled(key: "a:b", entry: nil)] {
            #expect(CacheFormat.Message(payload: Array(message.payload.utf8)) == message)
        }
    }
}

extension CacheFormat.LeaseGetReply.State {
    var entry: StoredEntry? {
        switch self {
        case .fresh(let entry), .stale(let entry): entry
        case .miss: nil
        }
    }
}
