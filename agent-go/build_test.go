package agent

import (
	"fmt"
	"strings"
)

// testBuildID names the fixture build.
const testBuildID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// testMetaTemplate is a small build: three files, blocks in counter order (not in profile
// order), one file in a package whose path sorts differently from its file name
// ("example.com/m/pkg0.go" is in package example.com/m, before package example.com/m/pkg).
const testMetaTemplate = `{"build":"%s","mode":"%s","files":[
{"name":"example.com/m/pkg/b.go","funcs":[{"name":"F","hash":"aa"},{"name":"G","hash":"bb"}],
 "blocks":[[10,2,12,3,2,0],[5,20,8,2,1,0],[5,20,6,4,1,0],[20,5,22,1,1,1],[20,1,25,1,3,1],[10,1,12,9,1,0]]},
{"name":"example.com/m/pkg0.go","funcs":[{"name":"H","hash":"cc"}],"blocks":[[3,14,5,2,1,0]]},
{"name":"example.com/m/a.go","funcs":[{"name":"main","hash":"dd"}],"blocks":[[7,1,7,5,0,0],[3,14,5,2,2,0]]}]}`

// testSizes is the number of blocks of each fixture file.
var testSizes = []int{6, 1, 2}

func testBuild(mode string) buildInfo {
	return buildInfo{
		ID:      testBuildID,
		Mode:    mode,
		Service: "agent-test",
		Meta:    strings.Replace(fmt.Sprintf(testMetaTemplate, testBuildID, mode), "\n", "", -1),
		Files:   len(testSizes),
	}
}

// build stands in for the zz_build.go that livecov generates, so that the package compiles
// and its init starts an agent, as in an instrumented binary.
var build = testBuild("set")
