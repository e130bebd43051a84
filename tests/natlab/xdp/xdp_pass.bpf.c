/*
 * xdp_pass.bpf.c - XDP_PASS for everything. The XDP lab attaches it to the
 * client's end of a veth pair: veth delivers the frames a peer's XDP
 * program sends back (XDP_TX) only to a device that runs XDP itself.
 */
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
    (void)ctx;
    return XDP_PASS;
}
