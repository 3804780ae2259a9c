/// A reply from Redis (RESP2).
public enum RedisValue: Sendable, Hashable {
    /// A status reply such as `OK` or `PONG`.
    case simpleString(String)
    /// An error reply nested inside an array (for example in an `EXEC` result). A top-level
    /// error reply is thrown as ``RedisError`` with code ``RedisError/Code/serverError`` instead.
    case error(String)
    case integer(Int)
    /// A binary-safe bulk string.
    case bulkString([UInt8])
    /// A null bulk string or a null array.
    case null
    case array([RedisValue])
}

extension RedisValue {
    /// The bytes of a bulk or simple string; `nil` for other replies.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): return bytes
        case .simpleString(let text): return Array(text.utf8)
        default: return nil
        }
    }

    /// A bulk or simple string decoded as UTF-8; `nil` for other replies.
    public var string: String? {
        switch self {
        case .bulkString(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .simpleString(let text): return text
        default: return nil
        }
    }

    /// An integer reply, or a string reply that holds a decimal integer.
    public var int: Int? {
        switch self {
        case .integer(let value): return value
        case .bulkString, .simpleString: return string.flatMap { Int($0) }
        default: return nil
        }
    }

    /// The elements of an array reply; `nil` for other replies.
    public var array: [RedisValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
