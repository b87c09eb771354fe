module ctrdbg/nodeagent

go 1.19
