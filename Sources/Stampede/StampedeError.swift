import StampedeRedis

/// An error raised by Stampede's locks and cache.
///
/// Errors compare by ``code`` alone. A Redis failure underneath keeps its ``RedisError`` in
/// ``underlying``.
public struct StampedeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure. New codes may be added; switch with a `default` case.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: String, Sendable {
            case leaseLost, waitTimedOut, redisUnavailable, invalidArgument, reentrantLock, noQuorum
            case invalidKey, valueTooLarge, corruptEntry, loaderTimedOut, loadFailedElsewhere, inProgress
        }
        let base: Base

        /// The lease ended while its holder still ran: its token was gone or replaced at a
        /// renewal, or Redis could not be reached until the lease ran out by the local clock.
        public static let leaseLost = Code(base: .leaseLost)
        /// The lock stayed held for the whole maximum wait.
        public static let waitTimedOut = Code(base: .waitTimedOut)
        /// Redis could not be reached or answered with an error; see ``StampedeError/underlying``.
        public static let redisUnavailable = Code(base: .redisUnavailable)
        /// A name, duration or option was out of range; the message says which.
        public static let invalidArgument = Code(base: .invalidArgument)
        /// The task tree already holds this lock: locks are not reentrant.
        public static let reentrantLock = Code(base: .reentrantLock)
        /// Redlock could not lock a majority of its masters within the validity time, or fewer
        /// replicas than ``LockOptions/replicaAcknowledgement`` asks for acknowledged a lock.
        public static let noQuorum = Code(base: .noQuorum)
        /// A cache key was empty or longer than ``StampedeCache/maximumKeyLength``.
        public static let invalidKey = Code(base: .invalidKey)
        /// An encoded value was larger than the cache's maximum value size.
        public static let valueTooLarge = Code(base: .valueTooLarge)
        /// The cached bytes could not be decoded as the requested type.
        public static let corruptEntry = Code(base: .corruptEntry)
        /// The loader ran past ``CachePolicy/loaderHardTimeout``.
        public static let loaderTimedOut = Code(base: .loaderTimedOut)
        /// The loader failed in another process, and no stale value could be served instead.
        public static let loadFailedElsewhere = Code(base: .loadFailedElsewhere)
        /// Another caller is running the body for this key (``SubmissionGuard``).
        public static let inProgress = Code(base: .inProgress)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String
    /// The Redis error behind a ``Code/redisUnavailable`` error.
    public let underlying: RedisError?
    /// Where the error was raised, for diagnostics.
    public let location: String

    public init(_ code: Code, _ message: String, underlying: RedisError? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.underlying = underlying
        self.location = "\(file):\(line)"
    }

    public var description: String {
        var text = "StampedeError.\(code): \(message)"
        if let underlying { text += " (\(underlying.code): \(underlying.message))" }
        return text + " (raised at \(location))"
    }

    public static func == (lhs: StampedeError, rhs: StampedeError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

extension StampedeError {
    /// Runs a Redis call, turning its failure into ``Code/redisUnavailable``.
    static func fromRedis<T>(_ call: () async throws -> T) async throws(StampedeError) -> T {
        do {
            return try await call()
        } catch let error as RedisError {
            throw StampedeError(.redisUnavailable, "Redis failed", underlying: error)
        } catch let error as StampedeError {
            throw error
        } catch {
            throw StampedeError(.redisUnavailable, "Redis failed: \(error)")
        }
    }
}
