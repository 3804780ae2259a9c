import ArgumentParser
import Foundation
import StampedeRedis

/// GET throughput of the Swift client beside `redis-benchmark` (C, hiredis-style
/// pipelining) on the same server in the same run, rounds interleaved.
struct ClientThroughput: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "GET throughput of the Redis client beside redis-benchmark, on one connection.",
        discussion: """
            Without --redis, starts a throwaway redis-server on a free loopback port and stops it \
            at the end. With --redis, writes only the keys 'stampede:bench:value' and \
            'key:__rand_int__' (redis-benchmark's) and deletes them afterwards.
            """
    )

    @Option(help: "Redis URL (redis://[user:password@]host:port/db or unix:///path). Default: $STAMPEDE_REDIS_URL, else a throwaway server.")
    var redis: String?

    @Option(help: "GET commands per measurement.")
    var requests: Int = 200_000

    @Option(help: "Value size in bytes.")
    var valueSize: Int = 100

    @Option(help: "Rounds; the median of each column is reported.")
    var rounds: Int = 5

    @Option(help: "Append the results as one JSON object to this file.")
    var json: String?

    func validate() throws {
        guard requests >= 1_000 else { throw ValidationError("--requests must be at least 1000") }
        guard (1...1_048_576).contains(valueSize) else { throw ValidationError("--value-size must be within 1...1048576") }
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be within 1...20") }
    }

    func run() async throws {
        try await ServerChoice.run(url: ServerChoice.userURL(redis)) { try await measure(on: $0) }
    }

    private func measure(on server: ServerChoice) async throws {
        let client = try RedisClient(configuration: server.configuration)
        defer { Task { await client.shutdown() } }
        let value = RedisArgument(bytes: [UInt8](repeating: UInt8(ascii: "x"), count: valueSize))
        try await client.send("SET", "stampede:bench:value", value)
        try await client.send("SET", "key:__rand_int__", value)
        defer {
            let cleanup = client
            Task { _ = try? await cleanup.send("DEL", "stampede:bench:value", "key:__rand_int__") }
        }
        let benchmark = try RedisBenchmark(configuration: server.configuration)

        print("GET throughput, \(valueSize)-byte values, \(requests) requests per measurement, \(rounds) rounds, one connection.")
        var columns: [String: [Double]] = [:]
        for round in 1...rounds {
            columns["redis-benchmark -c 1 -P 1", default: []].append(try benchmark.getsPerSecond(clients: 1, pipeline: 1, requests: requests / 4))
            columns["swift, 1 task", default: []].append(try await Self.getsPerSecond(client, tasks: 1, requests: requests / 4))
            columns["swift, 1 task, on the event loop", default: []].append(try await Self.getsPerSecond(client, tasks: 1, requests: requests / 4, onEventLoop: true))
            columns["redis-benchmark -c 16 -P 16", default: []].append(try benchmark.getsPerSecond(clients: 16, pipeline: 16, requests: requests))
            columns["swift, 16 tasks", default: []].append(try await Self.getsPerSecond(client, tasks: 16, requests: requests))
            columns["swift, 256 tasks", default: []].append(try await Self.getsPerSecond(client, tasks: 256, requests: requests))
            columns["swift, 256 tasks, on the event loop", default: []].append(try await Self.getsPerSecond(client, tasks: 256, requests: requests, onEventLoop: true))
            print("  round \(round)/\(rounds) done")
        }
        let medians = columns.mapValues { median($0) }
        func against(_ name: String, _ reference: String) -> String {
            String(format: "%.2fx", medians[name]! / medians[reference]!) + " of \(reference)"
        }
        let (one, many) = ("redis-benchmark -c 1 -P 1", "redis-benchmark -c 16 -P 16")
        let rows: [(String, Double, String)] = [
            (one, medians[one]!, "1 in flight (C)"),
            ("swift, 1 task", medians["swift, 1 task"]!, against("swift, 1 task", one)),
            ("swift, 1 task, on the event loop", medians["swift, 1 task, on the event loop"]!, against("swift, 1 task, on the event loop", one)),
            (many, medians[many]!, "256 in flight (C)"),
            ("swift, 16 tasks", medians["swift, 16 tasks"]!, "16 in flight"),
            ("swift, 256 tasks", medians["swift, 256 tasks"]!, against("swift, 256 tasks", many)),
            ("swift, 256 tasks, on the event loop", medians["swift, 256 tasks, on the event loop"]!, against("swift, 256 tasks, on the event loop", many)),
        ]
        print("")
        print("| client | GET/s (median) | note |")
        print("|---|---:|---|")
        for (name, rate, note) in rows { print("| \(name) | \(Int(rate.rounded())) | \(note) |") }

        if let json {
            var object: [String: Any] = ["value_size": valueSize, "requests": requests, "rounds": rounds]
            for (name, rates) in columns { object[name] = ["median": medians[name]!, "all": rates] }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            let line = String(decoding: data, as: UTF8.self) + "\n"
            if let handle = FileHandle(forWritingAtPath: json) {
                handle.seekToEndOfFile()
                handle.write(Data(line.utf8))
                try handle.close()
            } else {
                try line.write(toFile: json, atomically: true, encoding: .utf8)
            }
        }
    }

    /// `tasks` concurrent tasks issue `requests` GETs in all, as fast as replies come.
    /// With `onEventLoop`, the tasks prefer the client's ``RedisClient/taskExecutor``.
    static func getsPerSecond(_ client: RedisClient, tasks: Int, requests: Int, onEventLoop: Bool = false) async throws -> Double {
        let clock = ContinuousClock()
        let perTask = requests / tasks
        let executor: (any TaskExecutor)? = onEventLoop ? client.taskExecutor : nil
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<tasks {
                group.addTask(executorPreference: executor) {
                    for _ in 0..<perTask { _ = try await client.send("GET", "stampede:bench:value") }
                }
            }
            try await group.waitForAll()
        }
        return Double(perTask * tasks) / (clock.now - start).inSeconds
    }
}
