// The gai dialect class.
#ifndef GAI_DIALECTS_GAI_GAIDIALECT_H
#define GAI_DIALECTS_GAI_GAIDIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialects/Gai/GaiDialect.h.inc"

#endif // GAI_DIALECTS_GAI_GAIDIALECT_H
