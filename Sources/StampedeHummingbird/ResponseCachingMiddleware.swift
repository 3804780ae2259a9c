#if Hummingbird
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Stampede
import StampedeRedis
import Synchronization

/// Caches the responses of GET and HEAD routes in a ``StampedeCache``, with its guarantees:
/// across every app instance sharing the Redis, one handler call per key and expiry, while
/// other requests wait for it or get the previous response (stale-while-revalidate).
///
/// ```swift
/// let pages = StampedeCache(client: redis, configuration: .init(namespace: "pages",
///     policy: .init(timeToLive: .seconds(10), staleWhileRevalidate: .seconds(60))))
/// router.add(middleware: ResponseCachingMiddleware(cache: pages, varyHeaders: [.acceptLanguage]))
/// ```
///
/// - The key is the method, the path, the query parameters sorted, and the values of
///   ``varyHeaders``.
/// - A response is stored when its status is 200 and its `Cache-Control` has neither
///   `no-store` nor `private`; otherwise it goes to the request that caused it, and other
///   requests call the handler themselves. A route opts out by answering with
///   `Cache-Control: no-store`, or through ``shouldCache``.
/// - Past a response's time to live, within stale-while-revalidate, the request that takes
///   the lease calls the handler and gets the new response; requests in other instances get
///   the old one at once, and requests in the same instance join the refresh. (A handler
///   cannot outlive its request, so the refresh is not left to run in the background.)
/// - Responses carry `Age` (seconds since the handler produced them) and a cache-status
///   header (``statusHeader``, `X-Cache` by default): `MISS` when this request called the
///   handler, `HIT`, or `STALE` past the policy's time to live.
/// - Redis unavailable, with a policy that fails rather than loads without it: 503.
public struct ResponseCachingMiddleware<Context: RequestContext>: RouterMiddleware {
    public let cache: StampedeCache
    public let policy: CachePolicy?
    public let varyHeaders: [HTTPField.Name]
    public let statusHeader: HTTPField.Name
    /// Whether a request may be served from the cache at all. Default: always.
    public let shouldCache: @Sendable (Request) -> Bool

    /// The policy lookups run with: the given one (or the cache's), with the stale value's
    /// refresh done by the request that takes the lease, and no soft timeout, so that a
    /// handler never runs after the request that called it has ended (Hummingbird's `next`
    /// must not outlive the middleware's call).
    var handlerPolicy: CachePolicy {
        var policy = policy ?? cache.configuration.policy
        policy.staleRefresh = .byTheLeaseHolder
        policy.loaderSoftTimeout = nil
        return policy
    }

    public init(
        cache: StampedeCache, policy: CachePolicy? = nil, varyHeaders: [HTTPField.Name] = [],
        statusHeader: HTTPField.Name = HTTPField.Name("X-Cache")!,
        shouldCache: @escaping @Sendable (Request) -> Bool = { _ in true }
    ) {
        self.cache = cache
        self.policy = policy
        self.varyHeaders = varyHeaders
        self.statusHeader = statusHeader
        self.shouldCache = shouldCache
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get || request.method == .head, shouldCache(request) else {
            return try await next(request, context)
        }
        let key = cacheKey(for: request)
        let exchange = HandlerExchange<StoredResponse>()
        let stored: StoredResponse
        do {
            stored = try await lookUp(key, context: context, exchange: exchange) {
                try await Self.capture(try await next(request, context))
            }
        } catch let uncacheable as UncacheableResponse {
            return uncacheable.stored.response(status: "MISS", header: statusHeader, now: Date())
        } catch let error as StampedeError where error.code == .loadFailedElsewhere {
            // Another instance's handler failed or answered something not to store: this
            // request gets its own answer.
            return try await next(request, context)
        } catch let error as StampedeError where error.code == .redisUnavailable {
            throw HTTPError(.serviceUnavailable, message: "the cache is unavailable")
        }
        let now = Date()
        let status: String
        if exchange.handled {
            status = "MISS"
        } else {
            let timeToLive = (policy ?? cache.configuration.policy).timeToLive
            status = now.timeIntervalSince1970 - stored.storedAt > Double(timeToLive.components.seconds) ? "STALE" : "HIT"
        }
        return stored.response(status: status, header: statusHeader, now: now)
    }

    /// Runs the cache's lookup of `key` with `handler` as its loader, through a
    /// ``HandlerExchange`` (Hummingbird's `next` may not leave this call, while the cache runs
    /// its loaders in tasks of their own).
    private func lookUp(
        _ key: String, context: Context, exchange: HandlerExchange<StoredResponse>, handler: () async throws -> StoredResponse
    ) async throws -> StoredResponse {
        let (cache, policy, logger) = (self.cache, handlerPolicy, context.logger)
        return try await exchange.run(handler: handler) { callHandler in
            try await cache.value(for: key, as: StoredResponse.self, policy: policy, logger: logger) { try await callHandler() }
        }
    }

    /// `METHOD path?sorted-query` and the vary headers' values.
    func cacheKey(for request: Request) -> String {
        let query = request.uri.queryParameters.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "&")
        var key = "\(request.method.rawValue) \(request.uri.path)"
        if !query.isEmpty { key += "?" + query }
        for name in varyHeaders { key += "\n\(name.canonicalName): \(request.headers[values: name].joined(separator: ","))" }
        return key
    }

    /// Reads the handler's response whole; one not to store comes back as an error carrying it.
    static func capture(_ response: Response) async throws -> StoredResponse {
        let collector = BodyCollector()
        try await response.body.write(collector.writer)
        let stored = StoredResponse(status: response.status, headers: response.headers, body: collector.bytes, storedAt: Date())
        let cacheControl = response.headers[values: .cacheControl].joined(separator: ",").lowercased()
        guard response.status == .ok, !cacheControl.contains("no-store"), !cacheControl.contains("private") else {
            throw UncacheableResponse(stored: stored)
        }
        return stored
    }
}

/// Between an operation that runs in tasks of its own (a cache lookup, a lock's body) and
/// the request's task, which alone may call Hummingbird's `next`: the operation asks for a
/// handler call and waits; the request's task runs the handler and hands the result back.
/// Once the operation ended, a late ask is refused.
final class HandlerExchange<Output: Sendable>: Sendable {
    typealias Call = CheckedContinuation<Output, any Error>

    private let stream: AsyncStream<Call>
    private let continuation: AsyncStream<Call>.Continuation
    private let state = Mutex<(handled: Bool, ended: Bool)>((false, false))

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Call.self)
    }

    /// Whether the handler ran for this request.
    var handled: Bool { state.withLock { $0.handled } }

    /// Runs `operation` in a child task, and `handler` in this one each time the operation
    /// calls the function it is given; returns what the operation returns.
    func run<Result: Sendable>(
        handler: () async throws -> Output,
        _ operation: @escaping @Sendable (_ callHandler: @escaping @Sendable () async throws -> Output) async throws -> Result
    ) async throws -> Result {
        try await withThrowingTaskGroup(of: Result.self) { group in
            group.addTask {
                defer { self.operationEnded() }
                return try await operation { try await self.callHandler() }
            }
            for await call in stream {
                do {
                    call.resume(returning: try await handler())
                } catch {
                    call.resume(throwing: error)
                }
            }
            return try await group.next()!
        }
    }

    private func callHandler() async throws -> Output {
        try await withCheckedThrowingContinuation { call in
            let accepted = state.withLock { state -> Bool in
                guard !state.ended else { return false }
                state.handled = true
                return true
            }
            guard accepted, case .enqueued = continuation.yield(call) else {
                call.resume(throwing: CancellationError())
                return
            }
        }
    }

    private func operationEnded() {
        state.withLock { $0.ended = true }
        continuation.finish()
    }
}

/// A response the handler gave but that is not to be stored.
struct UncacheableResponse: Error {
    let stored: StoredResponse
}

/// Collects a response body's buffers.
final class BodyCollector: Sendable {
    private let buffer = Mutex(ByteBuffer())

    var bytes: ByteBuffer { buffer.withLock { $0 } }

    var writer: any ResponseBodyWriter { Writer(collector: self) }

    private struct Writer: ResponseBodyWriter {
        let collector: BodyCollector
        mutating func write(_ part: ByteBuffer) async throws {
            var part = part
            collector.buffer.withLock { $0.writeBuffer(&part) }
        }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}
#endif
