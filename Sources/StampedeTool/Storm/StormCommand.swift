import ArgumentParser
import Foundation
import StampedeRedis

/// Hit and miss storms across processes against a Redis: naive cache-aside, an in-process
/// single flight and Stampede side by side, with a table per scenario, JSON lines and a chart.
struct Storm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storm",
        abstract: "Storms across processes: origin calls, latency and Redis commands for naive, local and stampede.",
        discussion: """
            Scenarios: miss (keys absent, one wave), stale (values past their time to live, \
            stale-while-revalidate on, one wave), hit (fresh values over many keys, for --duration), \
            hot-hit (every caller on one fresh key, for --duration), lock (callers contend for one \
            lock, holding it --hold-ms, for --duration; mutual exclusion is checked in Redis).

            Strategies: naive (cache-aside with no protection; for locks, SET NX polled and a plain \
            DEL), local (cache-aside behind an in-process single flight; for locks, an in-process \
            lock), stampede (StampedeCache; for locks, RedisMutex).

            The origin is simulated: it counts its calls in Redis and sleeps --load-ms. Redis \
            commands are Redis's own count (INFO commandstats, including commands run by scripts) \
            less the storm's bookkeeping; on a shared Redis, other clients' commands count too.

            Without --redis, starts a throwaway redis-server (or with --cluster N, a throwaway \
            Redis Cluster of N masters) and stops it at the end. With --redis, writes keys under \
            'stampede:storm:' only and deletes them after each run; it refuses a database that holds \
            other keys unless given --allow-other-keys. On a cluster (a redis+cluster:// URL, or \
            --cluster), keys spread over the hash slots; commands are counted and keys deleted on \
            every master, and a second table shows the commands per master and the PUBLISH \
            messages sent over the cluster bus.
            """
    )

    @Option(help: "Redis URL (redis://[user:password@]host:port/db, unix:///path, or redis+cluster://host:port[,host:port...]). Default: $STAMPEDE_REDIS_URL, else a throwaway server.")
    var redis: String?
    @Option(help: "Without --redis: start a throwaway Redis Cluster of this many masters (at least 3) instead of one server.")
    var cluster: Int?
    @Option(help: "miss, stale, hit, hot-hit, lock, or all.")
    var scenario: OneOrAll<Scenario> = .all
    @Option(help: "naive, local, stampede, or all (side by side).")
    var strategy: OneOrAll<Strategy> = .all
    @Option(help: "Worker processes.")
    var processes: Int = 4
    @Option(help: "Concurrent callers per process, released at one instant.")
    var tasks: Int = 50
    @Option(help: "Distinct keys. Default: 8 for miss and stale, 1000 for hit (hot-hit and lock use one).")
    var keys: Int?
    @Option(help: "How long the simulated origin takes, in milliseconds.")
    var loadMs: Int = 100
    @Option(help: "Seconds that hit, hot-hit and lock run.")
    var duration: Double = 3
    @Option(help: "Lock scenario: how long each holder keeps the lock, in milliseconds.")
    var holdMs: Int = 1
    @Option(name: .customLong("repeat"), help: "Runs of each scenario and strategy; the table shows medians.")
    var repeats: Int = 1
    @Option(help: "Append one JSON object per scenario, strategy and repeat to this file.")
    var json: String?
    @Option(help: "Write an SVG chart (latency distribution and origin calls per strategy) to this file.")
    var chart: String?
    @Option(help: "Seed of the hit scenario's key sequence. Default: random (printed).")
    var seed: UInt64?
    @Flag(help: "Run against a database that holds keys other than the storm's own.")
    var allowOtherKeys = false

    func validate() throws {
        if let cluster {
            guard redis == nil else { throw ValidationError("--cluster starts a throwaway cluster; it cannot be used with --redis (give a redis+cluster:// URL instead)") }
            guard (3...16).contains(cluster) else { throw ValidationError("--cluster must be within 3...16 masters") }
        }
        guard (1...64).contains(processes) else { throw ValidationError("--processes must be within 1...64") }
        guard (1...10_000).contains(tasks) else { throw ValidationError("--tasks must be within 1...10000") }
        if let keys, !(1...100_000).contains(keys) { throw ValidationError("--keys must be within 1...100000") }
        guard (0...60_000).contains(loadMs) else { throw ValidationError("--load-ms must be within 0...60000") }
        guard duration >= 0.1, duration <= 3600 else { throw ValidationError("--duration must be within 0.1...3600 seconds") }
        guard (0...10_000).contains(holdMs) else { throw ValidationError("--hold-ms must be within 0...10000") }
        guard (1...100).contains(repeats) else { throw ValidationError("--repeat must be within 1...100") }
        for (flag, path) in [("--json", json), ("--chart", chart)] {
            guard let path else { continue }
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue,
                  FileManager.default.isWritableFile(atPath: folder) else {
                throw ValidationError("\(flag): cannot write in \(folder)")
            }
        }
    }

    func run() async throws {
        Interruption.shared.install()
        let parameters = StormParameters(
            processes: processes, tasks: tasks, keys: keys, loadMs: loadMs, duration: duration, holdMs: holdMs,
            seed: seed ?? UInt64.random(in: 0...UInt64(UInt32.max)),
            run: String(UInt32.random(in: 0...UInt32.max), radix: 36))
        try await ServerChoice.run(url: cluster == nil ? ServerChoice.userURL(redis) : nil, clusterMasters: cluster, whyThrowaway: cluster.map { "--cluster \($0)" } ?? "No --redis given") { server in
            Interruption.shared.stopOnInterrupt(server.throwawayServers)
            let client = try RedisClient(configuration: server.configuration)
            do {
                try await storm(parameters, on: server, client: client)
            } catch {
                // An interrupt's handler is deleting the keys with this client and will exit.
                while Interruption.shared.isInterrupted { try? await Task.sleep(for: .seconds(1)) }
                _ = try? await Keyspace.delete(matching: StormKeys.pattern(run: parameters.run), client)
                await client.shutdown()
                throw error
            }
            await client.shutdown()
        }
    }

    private func storm(_ parameters: StormParameters, on server: ServerChoice, client: RedisClient) async throws {
        let version = try await client.send("INFO", "server").string?
            .split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }?.dropFirst(14) ?? "?"
        if !server.isThrowaway {
            if !allowOtherKeys, let foreign = try await Keyspace.firstForeignKey(client) {
                throw ToolError("""
                    the database at \(server.configuration.endpoint) holds keys other than the storm's (for example \
                    '\(foreign.prefix(60))'); other traffic would mix into its figures. Use an empty database \
                    (for example redis://host:port/15) or pass --allow-other-keys (the storm writes and deletes \
                    only keys under '\(StormKeys.prefix)')
                    """)
            }
            Interruption.shared.onInterrupt(deleteKeys: {
                (try? await Keyspace.delete(matching: StormKeys.pattern(run: parameters.run), client)) != nil
            })
        }
        let machine = MachineDescription.current()
        say("Storm: \(processes) processes x \(tasks) callers, origin \(loadMs) ms, seed \(parameters.seed); Redis \(version) at \(server.configuration.endpoint); \(machine)")

        let progress = Progress()
        var all: [RunReport] = []
        for scenario in scenario.values {
            var reports: [RunReport] = []
            for round in 1...repeats {
                for strategy in strategy.values {
                    let report = try await StormRun(
                        parameters: parameters, scenario: scenario, strategy: strategy, repeat: round,
                        url: server.url, client: client, progress: progress
                    ).run()
                    progress.note(StormTable.summary(of: report, repeats: repeats))
                    if let json { try append(report.jsonLine, to: json) }
                    reports.append(report)
                }
            }
            say("")
            say(StormTable.render(scenario: scenario, parameters: parameters, reports: reports))
            all += reports
        }
        if let chart {
            let title = "stampede storm: \(processes) processes x \(tasks) callers, origin \(loadMs) ms"
            let subtitle = "Redis \(version); \(machine); seed \(parameters.seed); \(repeats == 1 ? "one run" : "\(repeats) runs") per strategy"
            try Data(StormChart.svg(title: title, subtitle: subtitle, parameters: parameters, reports: all).utf8)
                .write(to: URL(fileURLWithPath: chart))
            say("Chart written to \(chart)")
        }
        if let json { say("JSON lines appended to \(json)") }
    }

    private func append(_ line: String, to path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw ToolError("--json: cannot create \(path)") }
        }
        guard let file = FileHandle(forWritingAtPath: path) else { throw ToolError("--json: cannot write \(path)") }
        defer { try? file.close() }
        try file.seekToEnd()
        try file.write(contentsOf: Data((line + "\n").utf8))
    }
}

/// The machine a storm ran on, for its report: cores, memory, operating system.
enum MachineDescription {
    static func current() -> String {
        let info = ProcessInfo.processInfo
        let memory = Double(info.physicalMemory) / 1_073_741_824
        let system = (try? String(contentsOfFile: "/etc/os-release", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }?
            .dropFirst(12).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) ?? info.operatingSystemVersionString
        return String(format: "%d cores, %.0f GiB, %@", info.activeProcessorCount, memory, system)
    }
}
