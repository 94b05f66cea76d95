//! ICMPv6 (RFC 4443) message numbers. The header's layout is ICMPv4's (type, code, checksum,
//! then identifier and sequence for echo), so [`super::IcmpPacket`] reads both; what differs is
//! the numbering and the checksum, which covers the IPv6 pseudo header.

pub(crate) const TYPE_DEST_UNREACH: u8 = 1;
pub(crate) const TYPE_PACKET_TOO_BIG: u8 = 2;
pub(crate) const TYPE_TIME_EXCEEDED: u8 = 3;
pub(crate) const TYPE_PARAM_PROBLEM: u8 = 4;
pub(crate) const TYPE_ECHO_REQUEST: u8 = 128;
pub(crate) const TYPE_ECHO_REPLY: u8 = 129;
pub(crate) const TYPE_ROUTER_SOLICIT: u8 = 133;
pub(crate) const TYPE_ROUTER_ADVERT: u8 = 134;
pub(crate) const TYPE_NEIGHBOR_SOLICIT: u8 = 135;
pub(crate) const TYPE_NEIGHBOR_ADVERT: u8 = 136;

/// Destination-unreachable codes.
pub(crate) mod unreach {
    pub(crate) const NO_ROUTE: u8 = 0;
    pub(crate) const ADMIN_PROHIBITED: u8 = 1;
    pub(crate) const BEYOND_SCOPE: u8 = 2;
    pub(crate) const ADDRESS: u8 = 3;
    pub(crate) const PORT: u8 = 4;
    pub(crate) const SOURCE_POLICY: u8 = 5;
    pub(crate) const REJECT_ROUTE: u8 = 6;
}

/// Parameter-problem codes.
pub(crate) mod param {
    pub(crate) const NEXT_HEADER: u8 = 1;
}

/// Errors are types 0–127 (RFC 4443, 2.1).
pub(crate) fn is_error(msg_type: u8) -> bool {
    msg_type < 128
}
