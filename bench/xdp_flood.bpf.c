/*
 * xdp_flood.bpf.c - the flood generator's program: every frame
 * BPF_PROG_TEST_RUN hands it in live mode goes out of the interface
 * (XDP_TX), so the kernel transmits the same frame at line rate.
 */
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int xdp_flood(struct xdp_md *ctx)
{
    (void)ctx;
    return XDP_TX;
}
