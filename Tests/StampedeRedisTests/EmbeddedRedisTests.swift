import EmbeddedRedis
import Foundation
import StampedeTestSupport
import Testing

@Suite("Throwaway servers", .enabled(if: hasProcFileSystem, "finds the server processes in /proc"))
struct EmbeddedRedisTests {
    @Test func aServerDiesWithTheProcessThatStartedIt() async throws {
        // The tool starts a throwaway server for a long benchmark; the tool is then killed
        // outright (no clean-up runs), and the server must go with it.
        let tool = try WorkerProcess(["bench", "mutex", "--iterations", "10000000"])
        let line = try #require(await tool.line(startingWith: "No --redis given"))
        let address = try #require(line.firstRange(of: "127.0.0.1:"))
        let port = try #require(Int(line[address.upperBound...].prefix { $0.isNumber }))
        let pid = try #require(serverPID(port: port))
        tool.signal(SIGKILL)
        #expect(await eventually(within: .seconds(10)) { !isAlive(pid) }, "redis-server \(pid) outlived the process that started it")
    }

    @Test func stopEndsTheServerAndRestartKeepsTheAddress() async throws {
        let server = try await RedisServer.start()
        let url = server.url
        let firstPID = server.pid
        try await server.restart()
        #expect(server.url == url)
        #expect(!isAlive(firstPID))
        try await withClient(try RedisConfiguration(url: url)) { client async throws in
            #expect(try await client.send("PING") == .simpleString("PONG"))
        }
        let secondPID = server.pid
        server.stop()
        #expect(!isAlive(secondPID))
    }
}

/// The pid of the redis-server listening on `port`, from its process title.
private func serverPID(port: Int) -> pid_t? {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    for entry in entries {
        guard let pid = pid_t(entry),
              let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
        let text = String(decoding: cmdline, as: UTF8.self)
        if text.hasPrefix("redis-server") || text.contains("/redis-server"), text.contains(":\(port)") { return pid }
    }
    return nil
}

/// Running, as opposed to gone or a zombie waiting to be reaped.
private func isAlive(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return false }
    return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
}
