# miniupnpd_lib.sh - the router side shared by the `stunkit map` labs
# (map_lab_test.sh, map_double_nat_test.sh): miniupnpd (Debian
# miniupnpd-nftables) on a namespace whose LAN interface is "nin" and WAN
# interface "nout". Source it after testlib.sh.

# miniupnpd_tables NS: the chains miniupnpd fills (named in the config
# below) and a masquerading NAT that lets in only answers and what miniupnpd
# forwards. ("fwd" is an nft keyword: chains are named otherwise.)
miniupnpd_tables() {
    ip netns exec "$1" nft -f - <<'NFT'
table inet filter {
  chain forward {
    type filter hook forward priority 0; policy accept;
    jump miniupnpd
    iifname "nout" ct state established,related accept
    iifname "nout" ct status dnat accept
    iifname "nout" drop
  }
  chain miniupnpd {
  }
}
table inet nat {
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "nout" masquerade
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
NFT
}

# miniupnpd_conf FILE UUID: PCP, NAT-PMP and UPnP; the external address
# learned by STUN from our stunkitd on 198.51.100.1 (miniupnpd refuses a
# documentation-range address otherwise); leases kept in $tmp. Other
# routers (the punch lab's) set MU_EXT, MU_LAN, MU_NATPMP, MU_UPNP,
# MU_STUN, MU_TABLE, MU_NAT_TABLE, MU_LEASES, MU_ALLOW.
miniupnpd_conf() {
    cat >"$1" <<CONF
ext_ifname=${MU_EXT:-nout}
listening_ip=${MU_LAN:-nin}
http_port=0
enable_natpmp=${MU_NATPMP:-yes}
enable_upnp=${MU_UPNP:-yes}
ext_perform_stun=yes
ext_stun_host=${MU_STUN:-198.51.100.1}
ext_stun_port=3478
upnp_table_name=${MU_TABLE:-filter}
upnp_nat_table_name=${MU_NAT_TABLE:-nat}
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
min_lifetime=5
secure_mode=yes
system_uptime=yes
lease_file=${MU_LEASES:-$tmp/leases}
uuid=$2
allow 1024-65535 ${MU_ALLOW:-192.0.2.0/24} 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
CONF
}
