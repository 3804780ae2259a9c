@_exported import EmbeddedRedis
import Foundation
@_exported import StampedeRedis

/// The server most tests share. It is started once per test run and killed by its
/// supervisor when the test process exits; tests keep apart by key prefix, never FLUSHALL.
public actor SharedServer {
    public static let instance = SharedServer()
    private var server: RedisServer?

    public func get() async throws -> RedisServer {
        if let server { return server }
        let server = try await RedisServer.start()
        self.server = server
        return server
    }
}

/// A prefix no other test uses.
public func uniquePrefix(_ name: String = #function) -> String {
    "test:\(name.prefix { $0 != "(" }):\(UUID().uuidString.prefix(8)):"
}

/// A client of the shared server with short timeouts, shut down after `body`.
public func withSharedClient<T>(
    commandTimeout: Duration = .seconds(2),
    _ body: (RedisClient, RedisServer) async throws -> T
) async throws -> T {
    let server = try await SharedServer.instance.get()
    var configuration = try RedisConfiguration(url: server.url)
    configuration.commandTimeout = commandTimeout
    return try await withClient(configuration) { try await body($0, server) }
}

/// Runs `body` with a client and shuts the client down afterwards, even when `body` throws.
public func withClient<T>(_ configuration: RedisConfiguration, _ body: (RedisClient) async throws -> T) async throws -> T {
    let client = try RedisClient(configuration: configuration)
    do {
        let result = try await body(client)
        await client.shutdown()
        return result
    } catch {
        await client.shutdown()
        throw error
    }
}

/// Runs `body` with a private server that is stopped afterwards.
public func withPrivateServer<T>(
    _ options: RedisServer.Options = .init(),
    _ body: (RedisServer) async throws -> T
) async throws -> T {
    let server = try await RedisServer.start(options)
    defer { server.stop() }
    return try await body(server)
}

/// The error `body` throws as a ``RedisError``, or `nil` if it throws none (or another kind).
public func redisError(_ body: () async throws -> Void) async -> RedisError? {
    do {
        try await body()
        return nil
    } catch let error as RedisError {
        return error
    } catch {
        return nil
    }
}

/// Waits until `condition` holds, checking every 10 ms, for at most `limit`.
public func eventually(within limit: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}

/// Runs `body` until it returns instead of throwing, every 50 ms, for at most `limit`;
/// then throws its last error.
@discardableResult
public func eventuallyValue<T>(within limit: Duration = .seconds(10), _ body: () async throws -> T) async throws -> T {
    let deadline = ContinuousClock.now + limit
    while true {
        do {
            return try await body()
        } catch where ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// Whether this system has `/proc`, where the process tests find and inspect the processes
/// a run started (Linux); elsewhere those tests are turned off.
public let hasProcFileSystem = FileManager.default.fileExists(atPath: "/proc/self/stat")
