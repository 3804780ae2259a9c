/// One argument of a Redis command: binary-safe bytes.
///
/// Keys and values go to Redis as separate arguments, never spliced into command text,
/// so any byte (including NUL and CR LF) is safe. A string literal costs no allocation.
public struct RedisArgument: Sendable, Hashable, ExpressibleByStringInterpolation, ExpressibleByIntegerLiteral {
    private enum Storage: Sendable {
        case string(String)
        case bytes([UInt8])
    }

    private let storage: Storage

    public init(_ text: String) { storage = .string(text) }
    public init(bytes: [UInt8]) { storage = .bytes(bytes) }
    public init(bytes: some Sequence<UInt8>) { storage = .bytes(Array(bytes)) }
    public init(_ value: Int) { storage = .string(String(value)) }
    /// String literals are stored in the binary: keeping one costs no allocation.
    public init(stringLiteral value: String) { storage = .string(value) }
    public init(integerLiteral value: Int) { self.init(value) }

    /// The argument's bytes.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// How many bytes the argument has.
    var count: Int {
        switch storage {
        case .string(let text): text.utf8.count
        case .bytes(let bytes): bytes.count
        }
    }

    /// Calls `body` with the argument's bytes, without copying them where possible.
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        switch storage {
        case .string(var text):
            // Contiguous for literals and native strings, so no copy is made.
            return try text.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
        case .bytes(let bytes):
            return try bytes.withUnsafeBytes(body)
        }
    }

    public static func == (lhs: RedisArgument, rhs: RedisArgument) -> Bool {
        lhs.withUnsafeBytes { left in rhs.withUnsafeBytes { right in left.elementsEqual(right) } }
    }

    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}
