/// An error raised by the Redis connection layer.
///
/// Errors compare by ``code`` alone, so callers match on the kind of failure:
///
/// ```swift
/// catch let error as RedisError where error.code == .timeout { ... }
/// ```
///
/// A server error reply keeps the server's text in ``message`` (for example
/// `WRONGTYPE Operation against a key holding the wrong kind of value`). No password
/// ever appears in a message.
public struct RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure. New codes may be added; switch with a `default` case.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: String, Sendable {
            case connectionRefused, unknownHost, connectTimeout, timeout, connectionLost
            case serverError, protocolError, authenticationFailed, invalidURL, invalidArgument
            case clientClosed, tlsFailed
        }

        let base: Base

        /// Nothing listens at the address, or it refused the connection.
        public static let connectionRefused = Code(base: .connectionRefused)
        /// The host name could not be resolved.
        public static let unknownHost = Code(base: .unknownHost)
        /// The connection (including its handshake) did not complete within the connect timeout.
        public static let connectTimeout = Code(base: .connectTimeout)
        /// The server did not answer a command within the command timeout.
        public static let timeout = Code(base: .timeout)
        /// The connection closed while the command was in flight; it may or may not have run.
        public static let connectionLost = Code(base: .connectionLost)
        /// The server answered with an error reply; ``RedisError/message`` holds its text.
        public static let serverError = Code(base: .serverError)
        /// The server sent bytes that are not valid RESP; the connection was closed.
        public static let protocolError = Code(base: .protocolError)
        /// AUTH was refused: wrong user name or password, or no password was given.
        public static let authenticationFailed = Code(base: .authenticationFailed)
        /// A Redis URL could not be parsed; the message says which part is wrong.
        public static let invalidURL = Code(base: .invalidURL)
        /// An argument to the client was out of range (for example a timeout of zero).
        public static let invalidArgument = Code(base: .invalidArgument)
        /// The client was shut down.
        public static let clientClosed = Code(base: .clientClosed)
        /// A TLS connection could not be set up: the server's certificate was not trusted,
        /// had expired or named another host; the server wanted a client certificate; the
        /// other end does not speak TLS; or this build has no TLS. The message says which.
        public static let tlsFailed = Code(base: .tlsFailed)

        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public let code: Code
    /// What happened; for ``Code/serverError`` the server's own text.
    public let message: String
    /// Where the error was raised, for diagnostics.
    public let location: String

    public init(_ code: Code, _ message: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.location = "\(file):\(line)"
    }

    /// The first word of a server error reply (`WRONGTYPE`, `NOSCRIPT`, `ERR`), or `nil`.
    public var serverErrorPrefix: Substring? {
        guard code == .serverError else { return nil }
        return message.split(separator: " ", maxSplits: 1).first
    }

    public var description: String { "RedisError.\(code): \(message) (raised at \(location))" }

    public static func == (lhs: RedisError, rhs: RedisError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
