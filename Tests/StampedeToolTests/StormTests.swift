import Foundation
import StampedeTestSupport
@testable import StampedeTool
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// `stampede storm` end to end: the real executable, real worker processes, a real Redis.
@Suite("stampede storm", .serialized, .enabled(if: hasProcFileSystem, "finds the worker processes in /proc"))
struct StormTests {
    @Test("a worker answers ready, runs its callers at the start instant, reports, and exits when told")
    func workerProtocol() async throws {
        try await withSharedClient { client, server in
            let namespace = "stampede:storm:" + uniquePrefix()
            let worker = try WorkerProcess(workerArguments(server.url, namespace: namespace, strategy: "stampede"))
            #expect(await worker.line(startingWith: "ready") != nil)
            let startAt = monotonicNanoseconds() + 50_000_000
            try worker.send(line: "go \(startAt)")
            let line = try #require(await worker.line(startingWith: "result "))
            let report = try jsonObject(String(line.dropFirst(7)))
            #expect(report["requests"] as? Int == 10)
            #expect(report["errors"] as? Int == 0)
            #expect(report["timeouts"] as? Int == 0)
            #expect((report["latency"] as? [String: Any])?["count"] as? Int == 10)
            // The callers waited for the start instant, then for the 20 ms origin.
            #expect((report["wallMilliseconds"] as? Double ?? 0) >= 20)
            // Two keys, the full loader: one origin call each.
            #expect(try await client.send("GET", RedisArgument(namespace + ":origin-calls")).int == 2)
            // It waits for "exit" after its report, so that Redis's counters can be read first.
            try await Task.sleep(for: .milliseconds(200))
            #expect(await worker.exitStatus(within: .zero) == nil)
            try worker.send(line: "exit")
            #expect(await worker.exitStatus(within: .seconds(10)) == 0)
        }
    }

    @Test("a worker whose coordinator goes away before the start exits without running")
    func workerWithoutCoordinator() async throws {
        try await withSharedClient { client, server in
            let namespace = "stampede:storm:" + uniquePrefix()
            let worker = try WorkerProcess(workerArguments(server.url, namespace: namespace, strategy: "naive"))
            #expect(await worker.line(startingWith: "ready") != nil)
            worker.closeInput()
            #expect(await worker.exitStatus(within: .seconds(10)) == 2)
            #expect(try await client.send("GET", RedisArgument(namespace + ":origin-calls")).isNull)
        }
    }

    @Test("every scenario and strategy: JSON lines with every field, a chart, and nothing left behind")
    func fullStorm() async throws {
        try await withPrivateServer { server in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("storm-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let json = folder.appendingPathComponent("storm.json").path, chart = folder.appendingPathComponent("storm.svg").path
            let storm = try WorkerProcess([
                "storm", "--redis", server.url, "--processes", "2", "--tasks", "4", "--keys", "2", "--load-ms", "20",
                "--duration", "0.3", "--json", json, "--chart", chart, "--seed", "7",
            ])
            #expect(await storm.exitStatus(within: .seconds(300)) == 0, "\(storm.errorOutput)")

            let reports = try String(contentsOfFile: json, encoding: .utf8).split(separator: "\n").map { try jsonObject(String($0)) }
            #expect(reports.count == 15)
            let required = [
                "scenario", "strategy", "processes", "tasks", "keys", "load_ms", "requests", "origin_calls",
                "origin_calls_per_key", "latency_ms", "added_latency_ms_p99", "blocked", "stale_served", "errors",
                "timeouts", "redis_commands", "ops_per_sec", "wall_ms",
            ]
            for report in reports {
                let name = "\(report["scenario"] ?? "?") / \(report["strategy"] ?? "?")"
                for field in required { #expect(report[field] != nil, "\(name) has no \(field)") }
                let latency = report["latency_ms"] as? [String: Double] ?? [:]
                #expect(Set(latency.keys) == ["p50", "p90", "p99", "max"], "\(name)")
                #expect(latency["p50"]! <= latency["p99"]! && latency["p99"]! <= latency["max"]!, "\(name)")
                #expect(report["errors"] as? Int == 0, "\(name): \(report["error_samples"] ?? "")")
                #expect(report["timeouts"] as? Int == 0, "\(name)")
                #expect(report["seed"] as? Int == 7)
                if report["scenario"] as? String == "lock" {
                    #expect((report["handoff_ms"] as? [String: Double])?.keys.sorted() == ["p50", "p99"], "\(name)")
                    #expect(report["violations"] != nil, "\(name)")
                } else {
                    #expect(report["handoff_ms"] == nil && report["violations"] == nil, "\(name)")
                }
            }
            func report(_ scenario: String, _ strategy: String) -> [String: Any] {
                reports.first { $0["scenario"] as? String == scenario && $0["strategy"] as? String == strategy } ?? [:]
            }
            // One wave of 2 x 4 callers over 2 keys: every naive caller loads, local loads once
            // per process and key, stampede once per key.
            #expect(report("miss", "naive")["requests"] as? Int == 8)
            #expect(report("miss", "naive")["origin_calls"] as? Int == 8)
            #expect(report("miss", "local")["origin_calls"] as? Int == 4)
            #expect(report("miss", "stampede")["origin_calls"] as? Int == 2)
            #expect(report("miss", "stampede")["origin_calls_per_key"] as? Double == 1)
            // Stale: every stampede caller gets the previous value; one refresh per key.
            #expect(report("stale", "stampede")["stale_served"] as? Int == 8)
            #expect(report("stale", "stampede")["origin_calls"] as? Int == 2)
            #expect(report("stale", "naive")["stale_served"] as? Int == 0)
            // Hits: no origin calls; naive costs one GET per request.
            for strategy in ["naive", "local", "stampede"] {
                #expect(report("hit", strategy)["origin_calls"] as? Int == 0)
                #expect((report("hot-hit", strategy)["requests"] as? Int ?? 0) > 8)
            }
            #expect(report("hit", "naive")["redis_commands"] as? Int == report("hit", "naive")["requests"] as? Int)
            #expect(report("hot-hit", "stampede")["keys"] as? Int == 1)
            // Locks: only an in-process lock lets two processes in at once.
            #expect(report("lock", "stampede")["violations"] as? Int == 0)
            #expect(report("lock", "naive")["violations"] as? Int == 0)
            #expect((report("lock", "local")["violations"] as? Int ?? 0) > 0)

            let svg = try String(contentsOfFile: chart, encoding: .utf8)
            #expect(XMLParser(data: Data(svg.utf8)).parse(), "the chart is well-formed XML")
            #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
            #expect(svg.components(separatedBy: "<polyline").count - 1 == 15, "a latency curve per scenario and strategy")
            for label in ["Miss storm", "Stale storm", "Hit storm", "Hot-key storm", "Lock storm", "origin calls per key", "naive", "local", "stampede"] {
                #expect(svg.contains(label), "the chart shows \(label)")
            }

            // Nothing left behind: no keys, no worker processes.
            try await withClient(RedisConfiguration(url: server.url)) { client async throws in
                #expect(try await client.send("DBSIZE").int == 0)
            }
            #expect(workerProcesses(using: server.url).isEmpty)
        }
    }

    @Test("against a Redis with a password, the password is on no worker's command line")
    func passwordStaysOffCommandLines() async throws {
        try await withPrivateServer(.init(password: "s3cret-storm")) { server in
            let url = server.url.replacingOccurrences(of: "redis://", with: "redis://:s3cret-storm@")
            let storm = try WorkerProcess([
                "storm", "--redis", url, "--scenario", "hit", "--processes", "2", "--tasks", "2", "--duration", "3",
            ])
            #expect(await eventually(within: .seconds(60)) { workerProcesses(using: url).count == 2 })
            for pid in workerProcesses(using: url) {
                let commandLine = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
                #expect(!String(decoding: commandLine, as: UTF8.self).contains("s3cret-storm"))
            }
            #expect(await storm.exitStatus() == 0, "\(storm.errorOutput)")
        }
    }

    @Test("without --redis, the URL in STAMPEDE_REDIS_URL is used: no password on the storm's own command line either")
    func urlFromTheEnvironment() async throws {
        try await withPrivateServer(.init(password: "s3cret-env")) { server in
            let url = server.url.replacingOccurrences(of: "redis://", with: "redis://:s3cret-env@")
            let storm = try WorkerProcess(
                ["storm", "--scenario", "miss", "--strategy", "stampede", "--processes", "1", "--tasks", "2", "--load-ms", "5"],
                environment: ["STAMPEDE_REDIS_URL": url])
            #expect(await storm.exitStatus() == 0, "\(storm.errorOutput)")
            #expect(!storm.output.contains { $0.contains("throwaway") }, "\(storm.output)")
            #expect(storm.output.contains { $0.contains("at 127.0.0.1:\(server.port ?? 0)") }, "\(storm.output)")
            #expect(!(storm.output + storm.errorOutput).contains { $0.contains("s3cret-env") })
        }
    }

    @Test("a database with other keys is refused unless --allow-other-keys; those keys are untouched")
    func otherKeys() async throws {
        try await withPrivateServer { server in
            try await withClient(RedisConfiguration(url: server.url)) { client async throws in
                try await client.send("SET", "app:user:1", "kept")
                let refused = try WorkerProcess(["storm", "--redis", server.url, "--scenario", "miss", "--processes", "1", "--tasks", "2"])
                #expect(await refused.exitStatus() == 1)
                #expect(refused.errorOutput.count == 1)
                #expect(refused.errorOutput.first?.contains("holds keys other than the storm's") == true, "\(refused.errorOutput)")
                #expect(refused.errorOutput.first?.contains("app:user:1") == true)

                let allowed = try WorkerProcess([
                    "storm", "--redis", server.url, "--scenario", "miss", "--processes", "1", "--tasks", "2", "--allow-other-keys",
                ])
                #expect(await allowed.exitStatus() == 0, "\(allowed.errorOutput)")
                #expect(try await client.send("GET", "app:user:1").string == "kept")
                #expect(try await client.send("DBSIZE").int == 1)
            }
        }
    }

    @Test("bad flags, an unreachable Redis and a missing redis-server: one line on standard error, non-zero exit",
          arguments: [
            (["storm", "--processes", "0"], [:], "--processes must be within", 64),
            (["storm", "--scenario", "flood"], [:], "flood", 64),
            (["storm", "--json", "/nonexistent-folder/storm.json"], [:], "cannot write in /nonexistent-folder", 64),
            (["storm", "--redis", "http://localhost"], [:], "redis://", 1),
            (["storm", "--redis", "redis://127.0.0.1:1"], [:], "connectionRefused", 1),
            (["storm"], ["REDIS_SERVER": "/nonexistent/redis-server"], "could not start a throwaway redis-server", 1),
          ] as [([String], [String: String], String, Int32)])
    func badInput(arguments: [String], environment: [String: String], message: String, status: Int32) async throws {
        let storm = try WorkerProcess(arguments, environment: environment)
        #expect(await storm.exitStatus() == status)
        #expect(storm.errorOutput.count == 1, "\(storm.errorOutput)")
        #expect(storm.errorOutput.first?.hasPrefix("stampede: ") == true)
        #expect(storm.errorOutput.first?.contains(message) == true, "\(storm.errorOutput)")
        #expect(storm.output.allSatisfy { !$0.hasPrefix("|") }, "no storm ran")
    }

    @Test("a worker that dies mid-storm (SIGTERM) fails the storm with one line; the rest stop and no key is left")
    func aWorkerDies() async throws {
        try await withPrivateServer { server in
            let storm = try await runningHitStorm(server.url)
            // The last one started, so that it is not the first the storm waits for.
            let victim = try #require(workerProcesses(using: server.url).compactMap { pid_t($0) }.max())
            kill(victim, SIGTERM)
            #expect(await storm.exitStatus(within: .seconds(30)) == 1)
            #expect(storm.errorOutput.count == 1, "\(storm.errorOutput)")
            #expect(storm.errorOutput.first?.contains("exited early") == true, "\(storm.errorOutput)")
            #expect(workerProcesses(using: server.url).isEmpty)
            try await withClient(RedisConfiguration(url: server.url)) { client async throws in
                #expect(try await client.send("DBSIZE").int == 0)
            }
        }
    }

    @Test("Ctrl-C stops the workers and the throwaway redis-server")
    func interruptThrowaway() async throws {
        let storm = try WorkerProcess(["storm", "--scenario", "hit", "--processes", "2", "--tasks", "4", "--duration", "120"])
        let started = try #require(await storm.line(startingWith: "No --redis given"))
        let url = try #require(started.split(separator: " ").first { $0.hasPrefix("redis://") }.map(String.init))
        #expect(await eventually(within: .seconds(60)) { workerProcesses(using: url).count == 2 })
        storm.signal(SIGINT)
        #expect(await storm.exitStatus(within: .seconds(20)) == 128 + SIGINT)
        #expect(storm.errorOutput.last?.contains("stopped the throwaway redis-server") == true, "\(storm.errorOutput)")
        #expect(workerProcesses(using: url).isEmpty)
        var configuration = try RedisConfiguration(url: url)
        configuration.connectTimeout = .seconds(1)
        configuration.commandTimeout = .seconds(1)
        let stillUp = try await withClient(configuration) { client in (try? await client.send("PING")) != nil }
        #expect(!stillUp, "the throwaway server is gone")
    }

    @Test("Ctrl-C against a user's Redis stops the workers and deletes the storm's keys")
    func interruptUserRedis() async throws {
        try await withPrivateServer { server in
            let storm = try await runningHitStorm(server.url)
            try await withClient(RedisConfiguration(url: server.url)) { client async throws in
                #expect(try await client.send("DBSIZE").int ?? 0 >= 50)
                storm.signal(SIGINT)
                #expect(await storm.exitStatus(within: .seconds(20)) == 128 + SIGINT)
                #expect(storm.errorOutput.last?.contains("deleted the storm's keys") == true, "\(storm.errorOutput)")
                #expect(workerProcesses(using: server.url).isEmpty)
                #expect(try await client.send("DBSIZE").int == 0)
            }
        }
    }

    @Test("a coordinator killed outright (SIGKILL) leaves only keys that expire", arguments: [
        ["--scenario", "lock", "--strategy", "stampede", "--hold-ms", "1"],
        ["--scenario", "miss", "--strategy", "naive", "--load-ms", "60000"],
        ["--scenario", "hit", "--strategy", "stampede", "--keys", "20"],
    ])
    func killedCoordinator(scenario: [String]) async throws {
        try await withPrivateServer { server in
            let storm = try WorkerProcess(["storm", "--redis", server.url, "--processes", "2", "--tasks", "2", "--duration", "120"] + scenario)
            #expect(await eventually(within: .seconds(60)) { workerProcesses(using: server.url).count == 2 })
            try await withClient(RedisConfiguration(url: server.url)) { client async throws in
                // Running: the lock changes hands, the origin is called, the hits flow.
                try await Task.sleep(for: .milliseconds(500))
                storm.signal(SIGKILL)
                // The workers see their coordinator gone and exit; nothing deletes the keys.
                #expect(await eventually(within: .seconds(30)) { workerProcesses(using: server.url).isEmpty })
                let keys = try await client.send("KEYS", "*").array?.compactMap(\.string) ?? []
                #expect(!keys.isEmpty)
                for key in keys {
                    let ttl = try await client.send("PTTL", RedisArgument(key)).int ?? -1
                    #expect(ttl > 0, "\(key) does not expire")
                }
            }
        }
    }

    /// A two-minute hit storm on 50 keys against `url`, once its two workers are running.
    private func runningHitStorm(_ url: String) async throws -> WorkerProcess {
        let storm = try WorkerProcess([
            "storm", "--redis", url, "--scenario", "hit", "--keys", "50", "--processes", "2", "--tasks", "4", "--duration", "120",
        ])
        #expect(await eventually(within: .seconds(60)) { workerProcesses(using: url).count == 2 })
        return storm
    }

    private func workerArguments(_ url: String, namespace: String, strategy: String) -> [String] {
        [
            "storm-worker", "--redis", url, "--scenario", "miss", "--strategy", strategy, "--namespace", namespace,
            "--keys", "2", "--tasks", "10", "--load-ms", "20", "--duration-ms", "1000", "--hold-ms", "0",
            "--seed", "1", "--index", "0",
        ]
    }
}

/// Live `stampede storm-worker` processes pointed at `url` (given on the command line, or in
/// the environment as `stampede storm` gives it).
func workerProcesses(using url: String) -> [String] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.filter { $0.allSatisfy(\.isNumber) }.compactMap { pid in
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
        let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard arguments.contains("storm-worker") else { return nil }
        let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ").map {
            $0.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        } ?? []
        guard arguments.contains(url) || environment.contains("STAMPEDE_REDIS_URL=\(url)") else { return nil }
        return Int32(pid).map(isRunning) == true ? pid : nil
    }
}

func jsonObject(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}
