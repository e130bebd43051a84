/* stunkit/stunkit.h - everything public in one include. */
#ifndef STUNKIT_H
#define STUNKIT_H

#include "stunkit/export.h"
#include "stunkit/error.h"
#include "stunkit/addr.h"
#include "stunkit/msg.h"
#include "stunkit/integrity.h"
#include "stunkit/client.h"
#include "stunkit/nat.h"
#include "stunkit/responder.h"

#endif
