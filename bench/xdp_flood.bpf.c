/*
 * xdp_flood.bpf.c - the flood generator's program: every frame
 * BPF_PROG_TEST_RUN hands it in live mode goes out of the interface
 * (XDP_TX). It paces itself: each frame waits for its slot, interval_ns
 * after the previous one, so the flood is steady at the asked rate instead
 * of bursts that overflow the receiver's ring.
 */
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

__u64 interval_ns = 1000; /* set by bench_xdp_flood before loading */
__u64 next_ns;
__u64 first_ns, last_ns; /* when the first and the last frame left: the flood's own span */

static long wait_slot(__u64 i, void *ctx)
{
    (void)i;
    (void)ctx;
    return bpf_ktime_get_ns() >= next_ns ? 1 : 0;
}

SEC("xdp")
int xdp_flood(struct xdp_md *ctx)
{
    (void)ctx;
    __u64 now = bpf_ktime_get_ns();
    if (next_ns == 0 || now > next_ns + 1000000) /* first frame, or far behind: start again from now */
        next_ns = now;
    if (first_ns == 0)
        first_ns = now;
    bpf_loop(1 << 20, wait_slot, 0, 0);
    last_ns = bpf_ktime_get_ns();
    next_ns += interval_ns;
    return XDP_TX;
}
