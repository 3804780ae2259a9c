/// Where a command goes in a cluster: to the master of its keys' slot, or to any node.
///
/// Keys are found by the command's name, for the commands whose key positions are fixed
/// (and for scripts and functions, by their key count). A command this does not know goes to
/// any node: a node that does not serve its keys answers `MOVED`, and the client follows.
public enum ClusterRoute: Sendable, Equatable {
    /// The keys' slot.
    case slot(HashSlot)
    /// No key: any node will do (or, in a pipeline, the node of the keyed commands).
    case anyNode

    /// The route of `command` (its name, then its arguments).
    ///
    /// - Throws: ``RedisError/Code/invalidArgument`` when its keys are in different slots
    ///   (Redis would answer `CROSSSLOT`), before anything is sent.
    public init(command: [RedisArgument]) throws(RedisError) {
        var slot: HashSlot?
        for key in Self.keys(of: command) {
            let keySlot = HashSlot(key: key)
            if let slot, slot != keySlot {
                throw RedisError(.invalidArgument, "the keys of \(Self.name(of: command)) are in different hash slots (\(slot) and \(keySlot)); in a cluster, keys used together need a common hash tag such as {user:42}")
            }
            slot = keySlot
        }
        self = slot.map { .slot($0) } ?? .anyNode
    }

    /// The route of a pipeline: every command goes to one node.
    ///
    /// - Throws: ``RedisError/Code/invalidArgument`` when the commands' keys are in different
    ///   slots.
    public init(pipeline commands: [[RedisArgument]]) throws(RedisError) {
        var route = ClusterRoute.anyNode
        for command in commands {
            let next = try ClusterRoute(command: command)
            switch (route, next) {
            case (.anyNode, _): route = next
            case (.slot, .anyNode): break
            case (.slot(let first), .slot(let other)):
                guard first == other else {
                    throw RedisError(.invalidArgument, "a pipeline's commands use keys in different hash slots (\(first) and \(other)); in a cluster, one pipeline goes to one node")
                }
            }
        }
        self = route
    }

    /// The arguments of `command` that are keys.
    static func keys(of command: [RedisArgument]) -> ArraySlice<RedisArgument> {
        guard command.count > 1 else { return [] }
        switch Self.name(of: command) {
        case let name where firstKeyCommands.contains(name):
            return command[1...1]
        case let name where allKeysCommands.contains(name):
            return command[1...]
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard command.count > 2, let count = command[2].withUnsafeBytes({ Int(String(decoding: $0, as: UTF8.self)) }),
                  count >= 0, 3 + count <= command.count
            else { return [] }
            return command[3..<(3 + count)]
        case "OBJECT", "MEMORY":
            return command.count > 2 ? command[2...2] : []
        default:
            return []
        }
    }

    /// The command's name in capitals.
    static func name(of command: [RedisArgument]) -> String {
        command.first.map { $0.withUnsafeBytes { String(decoding: $0, as: UTF8.self).uppercased() } } ?? ""
    }

    /// Commands whose one key is their first argument.
    static let firstKeyCommands: Set<String> = [
        "GET", "SET", "SETNX", "SETEX", "PSETEX", "GETSET", "GETDEL", "GETEX", "INCR", "INCRBY", "INCRBYFLOAT",
        "DECR", "DECRBY", "APPEND", "STRLEN", "GETRANGE", "SETRANGE",
        "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "EXPIRETIME", "PEXPIRETIME", "TTL", "PTTL", "PERSIST", "TYPE", "DUMP", "RESTORE",
        "HGET", "HSET", "HSETNX", "HMGET", "HMSET", "HDEL", "HGETALL", "HEXISTS", "HINCRBY", "HLEN", "HKEYS", "HVALS", "HSCAN",
        "LPUSH", "RPUSH", "LPOP", "RPOP", "LRANGE", "LLEN", "LINDEX", "LREM", "LTRIM",
        "SADD", "SREM", "SMEMBERS", "SISMEMBER", "SCARD", "SSCAN",
        "ZADD", "ZREM", "ZRANGE", "ZSCORE", "ZCARD", "ZINCRBY", "ZRANK", "ZSCAN",
        "XADD", "XLEN", "XRANGE", "XDEL", "XTRIM",
    ]

    /// Commands whose arguments are all keys.
    static let allKeysCommands: Set<String> = ["DEL", "UNLINK", "EXISTS", "MGET", "TOUCH", "WATCH"]
}
