#if Hummingbird
import EmbeddedRedis
import Hummingbird
import Stampede
import StampedeHummingbird
import StampedeRedis
import Testing

/// The PersistDriver on a real Redis.
@Suite("StampedePersistDriver")
struct PersistDriverTests {
    @Test("create refuses a duplicate; set overwrites; get reads, nil for another type; remove; expiry")
    func persist() async throws {
        let server = try await RedisServer.start()
        defer { server.stop() }
        let client = try RedisClient(configuration: try RedisConfiguration(url: server.url))
        let driver = StampedePersistDriver(cache: StampedeCache(client: client, configuration: .init(namespace: "persist")))
        try await driver.create(key: "session", value: "alice", expires: nil)
        await #expect(throws: PersistError.duplicate) { try await driver.create(key: "session", value: "bob", expires: nil) }
        #expect(try await driver.get(key: "session", as: String.self) == "alice")
        try await driver.set(key: "session", value: "carol", expires: nil)
        #expect(try await driver.get(key: "session", as: String.self) == "carol")
        #expect(try await driver.get(key: "session", as: [Int].self) == nil)
        try await driver.remove(key: "session")
        #expect(try await driver.get(key: "session", as: String.self) == nil)
        // An expiry is the entry's time to live in Redis: no longer than asked.
        try await driver.set(key: "short", value: 1, expires: .seconds(5))
        #expect(try await driver.get(key: "short", as: Int.self) == 1)
        let ttl = try #require(try await client.send("PTTL", "{persist:short}").int)
        #expect(ttl > 0 && ttl <= 5_000, "\(ttl)")
        await client.shutdown()
    }
}
#endif
