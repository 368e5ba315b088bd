package b2bua

import psip "plateau/sip"

// Helpers shared with the signalling layer.
var (
	splitHostPort  = psip.SplitHostPort
	hasTag         = psip.HasTag
	headerValues   = psip.HeaderValues
	splitValues    = psip.SplitValues
	getHeader      = psip.GetHeader
	getHeaders     = psip.GetHeaders
	sourceAddr     = psip.SourceAddr
	routeViaPath   = psip.RouteViaPath
	digestAnswer   = psip.DigestAnswer
	splitNameAddrs = psip.SplitNameAddrs
)
