/// One argument of a Redis command: binary-safe bytes.
///
/// Keys and values go to Redis as separate arguments, never spliced into command text,
/// so any byte (including NUL and CR LF) is safe.
public struct RedisArgument: Sendable, Hashable, ExpressibleByStringInterpolation, ExpressibleByIntegerLiteral {
    public var bytes: [UInt8]

    public init(_ text: String) { self.bytes = Array(text.utf8) }
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(bytes: some Sequence<UInt8>) { self.bytes = Array(bytes) }
    public init(_ value: Int) { self.bytes = Array(String(value).utf8) }
    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }
}
