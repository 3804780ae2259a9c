/// A node of a Redis Cluster, as `CLUSTER SHARDS` and redirections name it.
public struct ClusterNodeAddress: Hashable, Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, as in a `MOVED` or `ASK` error; an IPv6 host may contain colons, so the
    /// port is what follows the last one.
    public init?(_ text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65_535).contains(port), colon != text.startIndex
        else { return nil }
        self.init(host: String(text[..<colon]), port: port)
    }

    public var description: String { "\(host):\(port)" }
}

/// Which master serves each hash slot, and which replicas follow it: the cluster's layout as
/// `CLUSTER SHARDS` reports it, kept up to date by `MOVED` redirections between reports.
///
/// A pure value: the cluster client owns one, reads it to route every command, and replaces
/// it when it asks the cluster again.
public struct ClusterTopology: Sendable, Equatable {
    /// A master, the slots it serves and its replicas.
    public struct Shard: Sendable, Equatable {
        public var master: ClusterNodeAddress
        public var replicas: [ClusterNodeAddress]
        public var slots: [ClosedRange<Int>]
    }

    public private(set) var shards: [Shard]
    /// The master of each slot, by slot number; `nil` for a slot that no master serves.
    private var masterOfSlot: [ClusterNodeAddress?]

    public init(shards: [Shard]) {
        self.shards = shards
        masterOfSlot = Array(repeating: nil, count: HashSlot.count)
        for shard in shards {
            for range in shard.slots where range.lowerBound >= 0 && range.upperBound < HashSlot.count {
                for slot in range { masterOfSlot[slot] = shard.master }
            }
        }
    }

    /// The topology in a reply to `CLUSTER SHARDS` (Redis 7 and later). A shard whose master
    /// is not online serves no slot.
    ///
    /// - Parameter usesTLS: whether the client speaks TLS: each node's `tls-port` is then
    ///   taken before its `port` (a node may listen on both).
    /// - Throws: ``RedisError/Code/protocolError`` for a reply of another shape.
    public init(shardsReply reply: RedisValue, usesTLS: Bool = false) throws(RedisError) {
        guard let shardValues = reply.array else { throw Self.malformed(reply) }
        var shards: [Shard] = []
        for shardValue in shardValues {
            let fields = try Self.fields(of: shardValue)
            guard let slotBounds = fields["slots"]?.array, slotBounds.count % 2 == 0,
                  let nodeValues = fields["nodes"]?.array
            else { throw Self.malformed(shardValue) }
            var slots: [ClosedRange<Int>] = []
            for index in stride(from: 0, to: slotBounds.count, by: 2) {
                guard let low = slotBounds[index].int, let high = slotBounds[index + 1].int, low <= high else {
                    throw Self.malformed(shardValue)
                }
                slots.append(low...high)
            }
            var master: ClusterNodeAddress?
            var replicas: [ClusterNodeAddress] = []
            for nodeValue in nodeValues {
                let node = try Self.fields(of: nodeValue)
                guard let role = node["role"]?.string, let port = usesTLS ? node["tls-port"]?.int ?? node["port"]?.int : node["port"]?.int ?? node["tls-port"]?.int else {
                    throw Self.malformed(nodeValue)
                }
                // Clients are to use "endpoint"; "ip" is the fallback of older replies.
                guard let host = (node["endpoint"]?.string).flatMap({ $0.isEmpty || $0 == "?" ? nil : $0 }) ?? node["ip"]?.string else {
                    throw Self.malformed(nodeValue)
                }
                let address = ClusterNodeAddress(host: host, port: port)
                if role != "master" {
                    // Listed whatever their health: a replica reports "loading" until it has
                    // caught up, and none is read from unless asked.
                    replicas.append(address)
                } else if node["health"]?.string ?? "online" == "online" {
                    master = address
                }
            }
            if let master { shards.append(Shard(master: master, replicas: replicas, slots: slots)) }
        }
        self.init(shards: shards)
    }

    /// The master that serves `slot`, as last known.
    public func master(for slot: HashSlot) -> ClusterNodeAddress? {
        masterOfSlot[slot.value]
    }

    /// Every master, in the order of the shards.
    public var masters: [ClusterNodeAddress] { shards.map(\.master) }

    /// Records a `MOVED` redirection: `slot` is served by `node` from now on.
    public mutating func moved(_ slot: HashSlot, to node: ClusterNodeAddress) {
        masterOfSlot[slot.value] = node
    }

    /// Whether every slot has a master.
    public var coversEverySlot: Bool { !masterOfSlot.contains(nil) }

    /// A reply array of alternating names and values, as a dictionary.
    private static func fields(of value: RedisValue) throws(RedisError) -> [String: RedisValue] {
        guard let elements = value.array, elements.count % 2 == 0 else { throw malformed(value) }
        var fields: [String: RedisValue] = [:]
        for index in stride(from: 0, to: elements.count, by: 2) {
            guard let name = elements[index].string else { throw malformed(value) }
            fields[name] = elements[index + 1]
        }
        return fields
    }

    private static func malformed(_ value: RedisValue) -> RedisError {
        RedisError(.protocolError, "unexpected reply to CLUSTER SHARDS: \(String(describing: value).prefix(200))")
    }
}

/// What a cluster node's error reply means for the command that got it.
public enum ClusterReply: Sendable, Equatable {
    /// `MOVED slot host:port`: the slot is served elsewhere for good; send it there, and
    /// update the topology.
    case moved(HashSlot, ClusterNodeAddress)
    /// `ASK slot host:port`: this one command goes to `host:port`, preceded by `ASKING`; the
    /// slot is being migrated there.
    case ask(HashSlot, ClusterNodeAddress)
    /// The command did not run and may be sent again after a short wait: `TRYAGAIN` (a
    /// multi-key command during a slot's migration), `CLUSTERDOWN` (a failover or lost
    /// slots), `LOADING`, `MASTERDOWN`.
    case retryLater
    /// Anything else: the command's own error.
    case error

    /// What the error reply `message` (as ``RedisError/message`` holds it) means.
    public init(errorMessage message: String) {
        let words = message.split(separator: " ", maxSplits: 3)
        switch words.first {
        case "MOVED"?, "ASK"?:
            guard words.count >= 3, let number = Int(words[1]), let slot = HashSlot(number),
                  let node = ClusterNodeAddress(words[2])
            else { self = .error; return }
            self = words[0] == "MOVED" ? .moved(slot, node) : .ask(slot, node)
        case "TRYAGAIN"?, "CLUSTERDOWN"?, "LOADING"?, "MASTERDOWN"?:
            self = .retryLater
        default:
            self = .error
        }
    }
}
