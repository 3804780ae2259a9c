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
        try await driver.set(key: "short", value: 1, expires: .milliseconds(100))
        #expect(try await driver.get(key: "short", as: Int.self) == 1)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await driver.get(key: "short", as: Int.self) == nil, "expired")
        try await driver.create(key: "short", value: 2, expires: nil)
        await client.shutdown()
    }
}
#endif
