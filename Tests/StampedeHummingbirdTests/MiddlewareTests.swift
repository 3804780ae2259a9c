#if Hummingbird
import EmbeddedRedis
import Foundation
import Stampede
import StampedeHummingbird
import StampedeRedis
import Synchronization
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The response-caching middleware over real HTTP: two app processes on one Redis, a real
/// client.
@Suite("ResponseCachingMiddleware", .serialized, .timeLimit(.minutes(3)))
struct MiddlewareTests {
    @Test("200 concurrent requests for one URL across two app instances call the handler once")
    func oneHandlerCall() async throws {
        try await withApps { apps, redis, namespace in
            let bodies = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<200 {
                    group.addTask { try await get(apps[index % 2], "/expensive/1").body }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(bodies == ["page 1, call 1"])
            #expect(try await calls("expensive", redis, namespace) == 1)
        }
    }

    @Test("a stale response is served with Age while one refresh runs; then the new one")
    func staleWhileRevalidate() async throws {
        try await withApps(timeToLive: .seconds(1)) { apps, redis, namespace in
            let first = try await get(apps[0], "/expensive/2")
            #expect(first.body == "page 2, call 1" && first.status == "MISS")
            // Past its time to live in Redis (its clock, not a test's): stale from then on.
            try await Task.sleep(for: .milliseconds(1_200))
            // One request takes the lease and calls the handler (300 ms); the rest get the old page at once.
            let during = try await withThrowingTaskGroup(of: Reply.self) { group in
                for index in 0..<20 { group.addTask { try await get(apps[index % 2], "/expensive/2") } }
                return try await group.reduce(into: [Reply]()) { $0.append($1) }
            }
            // Requests in the refreshing instance join its refresh and get the new page; those
            // in the other instance get the old one at once, with its Age.
            let summary = during.map { "\($0.status ?? "?") \($0.body)" }
            let refreshed = during.filter { $0.status == "MISS" }
            let stale = during.filter { $0.status == "STALE" }
            #expect(refreshed.count == 1 && refreshed.first?.body == "page 2, call 2", "\(summary)")
            #expect(stale.count >= 10, "\(summary)")
            #expect(stale.allSatisfy { $0.body == "page 2, call 1" && ($0.age ?? 0) >= 1 }, "\(summary)")
            #expect(during.filter { $0.status == "HIT" }.allSatisfy { $0.body == "page 2, call 2" }, "\(summary)")
            let after = try await get(apps[1], "/expensive/2")
            #expect(after.body == "page 2, call 2" && after.status == "HIT")
            #expect(try await calls("expensive", redis, namespace) == 2, "one refresh")
        }
    }

    @Test("a no-store response is never stored; vary headers keep separate entries")
    func noStoreAndVary() async throws {
        try await withApps { apps, redis, namespace in
            for index in 0..<5 {
                let reply = try await get(apps[index % 2], "/nostore")
                #expect(reply.body == "call \(index + 1)" && reply.status == "MISS")
            }
            #expect(try await calls("nostore", redis, namespace) == 5)
            #expect(try await get(apps[0], "/lang", language: "en").body == "language en")
            #expect(try await get(apps[1], "/lang", language: "fr").body == "language fr")
            let again = try await get(apps[1], "/lang", language: "en")
            #expect(again.body == "language en" && again.status == "HIT")
            #expect(try await calls("lang", redis, namespace) == 2)
        }
    }
}

/// The Idempotency-Key and concurrency-limit middlewares over real HTTP, two app processes.
@Suite("IdempotencyMiddleware and ConcurrencyLimitMiddleware", .serialized, .timeLimit(.minutes(3)))
struct GuardMiddlewareTests {
    @Test("one Idempotency-Key: the handler runs once; 409 while it runs; the stored response after; 422 for another body")
    func idempotency() async throws {
        try await withApps { apps, redis, namespace in
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for index in 0..<20 { group.addTask { try await post(apps[index % 2], "/orders", key: "k-1", body: "2 books") } }
                return try await group.reduce(into: [Reply]()) { $0.append($1) }
            }
            let summary = replies.map { "\($0.code) \($0.body)" }
            #expect(replies.filter { $0.code == 200 }.allSatisfy { $0.body == "order 1 for 2 books" }, "\(summary)")
            #expect(replies.allSatisfy { $0.code == 200 || $0.code == 409 }, "\(summary)")
            #expect(replies.contains { $0.code == 409 }, "\(summary)")
            let again = try await post(apps[1], "/orders", key: "k-1", body: "2 books")
            #expect(again.code == 200 && again.body == "order 1 for 2 books")
            #expect(try await post(apps[0], "/orders", key: "k-1", body: "3 books").code == 422)
            #expect(try await calls("orders", redis, namespace) == 1)
            #expect(try await post(apps[0], "/orders", key: "k-2", body: "1 pen").body == "order 2 for 1 pen")
        }
    }

    @Test("a concurrency limit of one across two instances: never two at once; the rest get 503 with Retry-After")
    func concurrencyLimit() async throws {
        try await withApps { apps, redis, namespace in
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for index in 0..<8 { group.addTask { try await get(apps[index % 2], "/limited") } }
                return try await group.reduce(into: [Reply]()) { $0.append($1) }
            }
            #expect(replies.contains { $0.code == 200 })
            let refused = replies.filter { $0.code == 503 }
            let retryAfters = refused.map { $0.retryAfter ?? "none" }
            #expect(!refused.isEmpty, "\(replies.map(\.code))")
            #expect(Set(retryAfters) == ["2"], "\(retryAfters)")
            #expect(try await redis.send("GET", RedisArgument("\(namespace):limited:excess")).isNull, "never two holders at once")
        }
    }
}

/// POST over HTTP with an Idempotency-Key.
func post(_ port: Int, _ path: String, key: String, body: String) async throws -> Reply {
    var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!, timeoutInterval: 10)
    request.httpMethod = "POST"
    request.setValue(key, forHTTPHeaderField: "Idempotency-Key")
    request.httpBody = Data(body.utf8)
    let (data, response) = try await URLSession.shared.data(for: request)
    let http = response as? HTTPURLResponse
    return Reply(body: String(decoding: data, as: UTF8.self), status: http?.value(forHTTPHeaderField: "X-Cache"), age: nil,
                 code: http?.statusCode ?? 0, retryAfter: http?.value(forHTTPHeaderField: "Retry-After"))
}

struct AppError: Error, CustomStringConvertible {
    let description: String
}

struct Reply: Sendable {
    var body: String
    var status: String?
    var age: Int?
    var code: Int = 0
    var retryAfter: String?
}

/// GET over HTTP from the app on `port`.
func get(_ port: Int, _ path: String, language: String? = nil) async throws -> Reply {
    var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!, timeoutInterval: 10)
    if let language { request.setValue(language, forHTTPHeaderField: "Accept-Language") }
    let (data, response) = try await URLSession.shared.data(for: request)
    let http = response as? HTTPURLResponse
    return Reply(
        body: String(decoding: data, as: UTF8.self), status: http?.value(forHTTPHeaderField: "X-Cache"),
        age: http?.value(forHTTPHeaderField: "Age").flatMap { Int($0) }, code: http?.statusCode ?? 0,
        retryAfter: http?.value(forHTTPHeaderField: "Retry-After"))
}

func calls(_ route: String, _ redis: RedisClient, _ namespace: String) async throws -> Int {
    try await redis.send("GET", RedisArgument("\(namespace):calls:\(route)")).int ?? 0
}

func eventually(within limit: Duration, _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return false
}

/// A throwaway Redis and two app processes on it; stopped afterwards.
func withApps(timeToLive: Duration = .seconds(60), _ body: ([Int], RedisClient, String) async throws -> Void) async throws {
    let server = try await RedisServer.start()
    defer { server.stop() }
    let namespace = "ns\(UInt32.random(in: 0...UInt32.max))"
    var apps: [Process] = []
    defer { for app in apps { app.terminate() } }
    var ports: [Int] = []
    for _ in 0..<2 {
        let port = try freeLoopbackPort()
        let app = Process()
        let folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [folder, folder.deletingLastPathComponent()].map { $0.appendingPathComponent("StampedeHummingbirdTestApp") }
        guard let executable = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw AppError(description: "StampedeHummingbirdTestApp is not built next to the tests")
        }
        app.executableURL = executable
        app.environment = ProcessInfo.processInfo.environment.merging([
            "REDIS_URL": server.url, "PORT": "\(port)", "NAMESPACE": namespace,
            "TTL_MS": "\(Int(timeToLive.components.seconds * 1000 + timeToLive.components.attoseconds / 1_000_000_000_000_000))",
        ]) { $1 }
        let output = Pipe()
        app.standardOutput = output
        try app.run()
        apps.append(app)
        // Ready when it says so.
        let line = output.fileHandleForReading.availableLine()
        guard line.hasPrefix("listening") else { throw AppError(description: "the app did not start: \(line)") }
        ports.append(port)
    }
    let client = try RedisClient(configuration: try RedisConfiguration(url: server.url))
    do {
        try await body(ports, client, namespace)
    } catch {
        await client.shutdown()
        throw error
    }
    await client.shutdown()
}

extension FileHandle {
    /// The next line (blocking), without its newline.
    func availableLine() -> String {
        var bytes: [UInt8] = []
        while let data = try? read(upToCount: 1), let byte = data.first, byte != UInt8(ascii: "\n") { bytes.append(byte) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
#endif
