import Foundation
import StampedeRedis

/// Runs `redis-benchmark` (from Debian's redis-tools) against the same server.
struct RedisBenchmark {
    let executable: String
    let target: [String]

    init(configuration: RedisConfiguration) throws {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/bin:/usr/local/bin"
        guard let found = path.split(separator: ":").map({ "\($0)/redis-benchmark" })
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else {
            throw ToolError("redis-benchmark was not found; install it with: apt-get install -y redis-tools")
        }
        executable = found
        var target: [String]
        switch configuration.endpoint {
        case .tcp(let host, let port): target = ["-h", host, "-p", "\(port)"]
        case .unixSocket(let path): target = ["-s", path]
        }
        if let username = configuration.username { target += ["--user", username] }
        if let password = configuration.password { target += ["-a", password] }
        if configuration.database != 0 { target += ["--dbnum", "\(configuration.database)"] }
        self.target = target
    }

    /// GETs per second with `clients` connections and `pipeline` commands in flight on each.
    func getsPerSecond(clients: Int, pipeline: Int, requests: Int) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = target + ["-t", "get", "-c", "\(clients)", "-P", "\(pipeline)", "-n", "\(requests)", "--csv"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        // --csv: a header line, then "GET","123456.78",...
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("\"GET\"") {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            if fields.count > 1, let rate = Double(fields[1]) { return rate }
        }
        throw ToolError("could not read redis-benchmark's output: \(text.prefix(300))")
    }
}
