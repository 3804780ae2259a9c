import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A private, throwaway `redis-server` process: no persistence, loopback or a unix socket
/// only, gone when stopped or when the process that started it exits.
///
/// ```swift
/// let server = try await RedisServer.start()
/// defer { server.stop() }
/// let client = try RedisClient(configuration: RedisConfiguration(url: server.url))
/// ```
///
/// The server runs under a small `sh` supervisor that checks every half second that this
/// process still lives: when it exits for any reason (even `SIGKILL`), the supervisor kills
/// the server, so no test run leaves one behind.
public final class RedisServer: @unchecked Sendable {
    /// How to start a server.
    public struct Options: Sendable {
        /// Listen on a unix socket instead of a loopback TCP port. Default: `false`.
        public var unixSocket: Bool
        /// `requirepass` for the default user. Default: `nil`.
        public var password: String?
        /// ACL users that may do everything: `(name, password)`. Default: none.
        public var users: [(name: String, password: String)]
        /// More `redis-server` arguments, such as `["--maxmemory", "10mb"]`.
        public var extraArguments: [String]
        /// Serve TLS only, on ``RedisServer/port``. Default: `nil`.
        public var tls: TLS?
        /// Run as a Sentinel (`redis-server FILE --sentinel`) with these lines in its
        /// configuration file, such as `sentinel monitor mymaster 127.0.0.1 6379 2`.
        /// Default: `nil` (a server).
        public var sentinel: [String]?

        public init(
            unixSocket: Bool = false, password: String? = nil,
            users: [(name: String, password: String)] = [], extraArguments: [String] = [], tls: TLS? = nil
        ) {
            self.unixSocket = unixSocket
            self.password = password
            self.users = users
            self.extraArguments = extraArguments
            self.tls = tls
            sentinel = nil
        }

        /// A Sentinel with `configuration` as its file's lines.
        public static func sentinel(_ configuration: [String]) -> Options {
            var options = Options()
            options.sentinel = configuration
            return options
        }
    }

    /// A TLS-only server's certificate and the authority its clients' certificates must
    /// chain to.
    public struct TLS: Sendable {
        public var certificate: TestCertificates.Pair
        public var authorityFile: String
        /// Whether a client must present a certificate (`tls-auth-clients yes`) or may
        /// (`optional`).
        public var requiresClientCertificate: Bool

        public init(certificate: TestCertificates.Pair, authorityFile: String, requiresClientCertificate: Bool = false) {
            self.certificate = certificate
            self.authorityFile = authorityFile
            self.requiresClientCertificate = requiresClientCertificate
        }
    }

    /// Why a server could not be started.
    public struct StartError: Error, CustomStringConvertible {
        public let description: String
    }

    public let options: Options
    /// The folder holding the log and the socket; removed by ``stop()``.
    public let directory: URL
    /// The TCP port, or `nil` for a unix-socket server.
    public private(set) var port: Int?
    /// The pid of the `redis-server` process (changes on ``restart()``).
    public private(set) var pid: pid_t = 0

    private let lock = NSLock()

    private var supervisor: Process?

    private init(options: Options, directory: URL) {
        self.options = options
        self.directory = directory
    }

    /// The URL to give a client: `redis://127.0.0.1:PORT`, `unix:///…/redis.sock`, or for
    /// a TLS server `rediss://127.0.0.1:PORT?tls_ca_file=…` (trusting the server's
    /// authority). Credentials are not part of it.
    public var url: String {
        if let port, let tls = options.tls { return "rediss://127.0.0.1:\(port)?tls_ca_file=\(tls.authorityFile)" }
        if let port { return "redis://127.0.0.1:\(port)" }
        return "unix://\(socketPath)"
    }

    public var socketPath: String { directory.appendingPathComponent("redis.sock").path }
    public var logPath: String { directory.appendingPathComponent("redis.log").path }

    /// The `redis-server` binary: `$REDIS_SERVER`, else the first on `PATH`, else in
    /// `/usr/bin` or `/usr/local/bin`.
    public static func executablePath() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["REDIS_SERVER"], !explicit.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: explicit) else {
                throw StartError(description: "REDIS_SERVER=\(explicit) is not an executable file")
            }
            return explicit
        }
        let path = (environment["PATH"] ?? "") + ":/usr/bin:/usr/local/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw StartError(description: "redis-server was not found on PATH; install it with: apt-get install -y redis-server")
    }

    /// Starts a server and waits until it accepts connections.
    ///
    /// - Throws: ``StartError`` when `redis-server` is missing or does not come up in 10 s.
    public static func start(_ options: Options = Options()) async throws -> RedisServer {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("stampede-redis-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let server = RedisServer(options: options, directory: directory)
        var lastError: (any Error)?
        // A free port can be taken between choosing it and binding it: try a few.
        for _ in 0..<5 {
            if !options.unixSocket { server.port = try freeLoopbackPort() }
            do {
                try await server.launch()
                return server
            } catch {
                lastError = error
                server.kill()
            }
        }
        try? FileManager.default.removeItem(at: directory)
        throw lastError!
    }

    private func arguments() -> [String] {
        var arguments = [
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", directory.path, "--logfile", logPath,
            "--enable-debug-command", "local", "--protected-mode", "no",
        ]
        if let port, let tls = options.tls {
            arguments += [
                "--port", "0", "--tls-port", "\(port)", "--bind", "127.0.0.1",
                "--tls-cert-file", tls.certificate.certificateFile, "--tls-key-file", tls.certificate.privateKeyFile,
                "--tls-ca-cert-file", tls.authorityFile, "--tls-auth-clients", tls.requiresClientCertificate ? "yes" : "optional",
            ]
        } else if let port {
            arguments += ["--port", "\(port)", "--bind", "127.0.0.1"]
        } else {
            arguments += ["--port", "0", "--unixsocket", socketPath, "--unixsocketperm", "700"]
        }
        if let password = options.password { arguments += ["--requirepass", password] }
        for user in options.users { arguments += ["--user", user.name, "on", ">\(user.password)", "~*", "&*", "+@all"] }
        return arguments + options.extraArguments
    }

    private func launch() async throws {
        try? FileManager.default.removeItem(atPath: logPath)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // Print the server's pid, then watch this process: once it is gone (even by SIGKILL)
        // the server is killed too. stop() kills both directly.
        let script = """
            "$0" "$@" </dev/null >/dev/null 2>&1 & pid=$!; echo $pid
            while kill -0 $PPID 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 0.5; done
            kill -9 $pid 2>/dev/null
            """
        var configurationFile: [String] = []
        if let sentinel = options.sentinel {
            // Sentinel keeps its state in its file, which must exist and be writable.
            let file = directory.appendingPathComponent("sentinel.conf")
            if !FileManager.default.fileExists(atPath: file.path) {
                try Data((sentinel.joined(separator: "\n") + "\n").utf8).write(to: file)
            }
            configurationFile = [file.path, "--sentinel"]
        }
        process.arguments = ["-c", script, try Self.executablePath()] + configurationFile + arguments()
        let output = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        lock.withLock { supervisor = process }
        let line = String(decoding: output.fileHandleForReading.readLine(), as: UTF8.self)
        guard let pid = pid_t(line) else { throw StartError(description: "the supervisor did not report the server's pid") }
        lock.withLock { self.pid = pid }

        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            let lowered = log.lowercased()
            // "Ready to accept connections tcp", "The server is now ready to accept connections at …"
            if lowered.contains("ready to accept connections") { return }
            // A Sentinel says instead that it watches its first master.
            if options.sentinel != nil, lowered.contains("+monitor master") { return }
            // A server that fails at start (port taken, bad option) stays a zombie of the
            // supervisor, so its log, not its pid, tells.
            if lowered.contains("could not create") || lowered.contains("fatal") || lowered.contains("exiting") {
                throw StartError(description: "redis-server exited at start; its log says:\n\(log.suffix(800))")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw StartError(description: "redis-server did not accept connections within 10 s (log: \(logPath))")
    }

    /// Stops the server at once (`SIGKILL`) and removes its folder.
    public func stop() {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Kills the server (`SIGKILL`), as a crash would, keeping its folder so that
    /// ``restart()`` can bring it back at the same address.
    public func kill() {
        let (process, pid) = lock.withLock { () -> (Process?, pid_t) in
            defer { supervisor = nil }
            return (supervisor, self.pid)
        }
        if let process, process.isRunning { sendSignal(SIGKILL, to: process.processIdentifier) }
        guard pid > 0 else { return }
        sendSignal(SIGKILL, to: pid)
        // Wait until the server is dead (gone, or a zombie), so its port is free again.
        for _ in 0..<400 where !Self.isDead(pid) { usleep(5_000) }
    }

    private static func isDead(_ pid: pid_t) -> Bool {
        #if os(Linux)
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        // The state follows the command name: "pid (comm) S ..."
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
        #else
        // Without /proc, a zombie (the supervisor reaps it) still counts as alive.
        return sendSignal(0, to: pid) != 0
        #endif
    }

    /// Starts a new server at the same address with the same options, killing the old one
    /// if it still runs. Everything in memory is lost, as after a crash.
    public func restart() async throws {
        kill()
        try await launch()
    }

    /// Freezes the server (`SIGSTOP`): connections stay open and nothing answers.
    public func pause() { sendSignal(SIGSTOP, to: pid) }

    /// Thaws a paused server (`SIGCONT`).
    public func resume() { sendSignal(SIGCONT, to: pid) }

    deinit { stop() }
}

extension FileHandle {
    /// Reads up to and excluding the next newline (or to EOF), one byte at a time.
    fileprivate func readLine() -> [UInt8] {
        var line: [UInt8] = []
        while let data = try? read(upToCount: 1), let byte = data.first, byte != UInt8(ascii: "\n") {
            line.append(byte)
        }
        return line
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
public func freeLoopbackPort() throws -> Int {
    #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw RedisServer.StartError(description: "socket() failed: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw RedisServer.StartError(description: "bind() failed: errno \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// `kill(2)`, named apart from ``RedisServer/kill()``.
@discardableResult
private func sendSignal(_ signal: Int32, to pid: pid_t) -> Int32 {
    kill(pid, signal)
}
